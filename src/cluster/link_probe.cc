#include "cluster/link_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "wire.pb.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;

// One Ping { payload_bytes } + [payload] -> Pong { payload_bytes }; returns the seconds it took.
Result<double> ping(net::Client& client, size_t payload, std::chrono::milliseconds timeout) {
  wire::Envelope e;
  e.mutable_ping()->set_payload_bytes(payload);
  std::vector<zmq::message_t> frames;
  if (payload > 0) {
    frames.emplace_back(payload);
    std::memset(frames.back().data(), 0x5a, payload);
  }
  const auto t0 = Clock::now();
  LL_RETURN_IF_ERROR(client.send(e, std::move(frames)));
  const auto deadline = t0 + timeout;
  while (Clock::now() < deadline) {
    if (client.disconnected()) return Status::Errorf("link lost: {}", client.disconnect_reason());
    LL_ASSIGN_OR_RETURN(auto reply, client.receive(std::chrono::milliseconds(50)));
    if (!reply) continue;
    if (reply->envelope().has_error()) return Status::Error(reply->envelope().error().message());
    if (!reply->envelope().has_pong() || reply->envelope().pong().payload_bytes() != payload) {
      return Status::Error("answered a ping with something else");
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return Status::Errorf("no answer to a ping of {} bytes within {:.1f} s", payload, timeout.count() / 1000.0);
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

Result<LinkMeasurement> probe_link(const std::string& endpoint, const std::string& public_key,
                                   const net::SecurityOptions& security, const ProbeOptions& options) {
  auto client = net::Client::connect(endpoint, public_key, security);
  if (!client.ok()) return Status::Errorf("link to {}: {}", endpoint, client.error());
  net::Client& c = *client.value();
  auto fail = [&](const Status& s) { return Status::Errorf("link to {}: {}", endpoint, s.message()); };

  // The first ping also waits for the connection and the CURVE handshake: not timed.
  if (auto warm = ping(c, 0, options.timeout); !warm.ok()) return fail(warm.status());
  std::vector<double> rtts;
  for (int i = 0; i < std::max(1, options.rtt_pings); ++i) {
    auto t = ping(c, 0, options.timeout);
    if (!t.ok()) return fail(t.status());
    rtts.push_back(t.value());
  }
  LinkMeasurement m;
  m.rtt_seconds = median(rtts);

  // Grow the payload until one ping takes min_timed beyond the round trip, then time it thrice.
  size_t payload = 64 << 10;
  double seconds = 0;
  while (true) {
    auto t = ping(c, payload, options.timeout);
    if (!t.ok()) return fail(t.status());
    seconds = t.value();
    const bool long_enough = seconds - m.rtt_seconds >= std::chrono::duration<double>(options.min_timed).count();
    if (long_enough || payload >= options.max_payload_bytes) break;
    payload = std::min(options.max_payload_bytes, payload * 4);
  }
  std::vector<double> times = {seconds};
  for (int i = 0; i < 2; ++i) {
    auto t = ping(c, payload, options.timeout);
    if (!t.ok()) return fail(t.status());
    times.push_back(t.value());
  }
  // What the payload added to an empty round trip; never below a microsecond (loopback).
  const double transfer = std::max(median(times) - m.rtt_seconds, 1e-6);
  m.bandwidth_bytes_per_s = static_cast<double>(payload) / transfer;
  return m;
}

}  // namespace ll::cluster
