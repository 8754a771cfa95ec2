// The process-wide context and the socket setup shared by Server and Client.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>

#include "net/endpoint.h"
#include "net/socket_setup.h"

namespace ll::net {

zmq::context_t& context() {
  // Never destroyed: zmq_ctx_term at exit would block on any socket still open in a static or a thread.
  // Two I/O threads so that a worker encrypts its incoming and outgoing links on different cores.
  static zmq::context_t* ctx = new zmq::context_t(2);
  return *ctx;
}

namespace detail {
namespace {

constexpr int kHighWaterMark = 100;        // messages queued per peer and direction before send waits
// A peer that froze or lost its link is noticed within 2.5 s (the next PING, then its timeout),
// soon enough for the head to recover before a step's deadline.
constexpr int kHeartbeatIvlMs = 500;       // PING twice a second on an idle link
constexpr int kHeartbeatTimeoutMs = 2000;  // no traffic for this long after a PING: the link is dead
constexpr int kHeartbeatTtlMs = 2000;      // and the peer is told to apply the same deadline to us
constexpr int kHandshakeIvlMs = 5000;      // a peer that never completes the handshake is dropped

}  // namespace

Status check_security(const std::string& endpoint, const SecurityOptions& security) {
  if (security.insecure) return check_plain_text_allowed(endpoint);
  if (!zmq_has("curve")) {
    return Status::Error("this libzmq was built without CURVE; encrypted transport is unavailable");
  }
  if (auto s = validate_keypair(security.keys); !s.ok()) return Status::Errorf("own key pair: {}", s.message());
  return Status::Ok();
}

void apply_common_options(zmq::socket_t& socket, const Limits& limits) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, kHighWaterMark);
  socket.set(zmq::sockopt::rcvhwm, kHighWaterMark);
  socket.set(zmq::sockopt::sndtimeo, static_cast<int>(limits.send_timeout.count()));
  // libzmq drops the connection of a peer announcing a larger frame before allocating it.
  const size_t largest = std::max(limits.max_envelope_bytes, limits.max_frame_bytes);
  socket.set(zmq::sockopt::maxmsgsize,
             static_cast<int64_t>(std::min<size_t>(largest, std::numeric_limits<int64_t>::max())));
  socket.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIvlMs);
  socket.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
  socket.set(zmq::sockopt::heartbeat_ttl, kHeartbeatTtlMs);
  socket.set(zmq::sockopt::handshake_ivl, kHandshakeIvlMs);
}

Status send_parts(zmq::socket_t& socket, std::vector<zmq::message_t>& parts, std::string_view peer) {
  try {
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto flags = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      // Only the first part can wait: libzmq accepts the rest of a message once it accepted its start.
      if (!socket.send(parts[i], flags)) {
        return Status::Errorf("send to {} timed out after {} ms: its queue is full (not reading or not connected)",
                              peer, socket.get(zmq::sockopt::sndtimeo));
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Status::Errorf("send to {}: peer is not connected", peer);
    return Status::Errorf("send to {}: {}", peer, e.what());
  }
  return Status::Ok();
}

bool receive_parts(zmq::socket_t& socket, std::chrono::milliseconds timeout, std::vector<zmq::message_t>& parts) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;  // a signal: the caller's loop decides whether to go on
    throw;
  }
  if ((item.revents & ZMQ_POLLIN) == 0) return false;
  zmq::message_t part;
  if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
  bool more = part.more();
  parts.push_back(std::move(part));
  // libzmq delivers a multipart message only once all of it has arrived, so the rest is already here.
  while (more) {
    zmq::message_t next;
    (void)socket.recv(next);
    more = next.more();
    parts.push_back(std::move(next));
  }
  return true;
}

std::string hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace detail
}  // namespace ll::net
