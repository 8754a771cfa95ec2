#include "net/zap_authenticator.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <iterator>
#include <thread>
#include <zmq_addon.hpp>

#include "core/log.h"
#include "net/transport.h"

namespace ll::net {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";  // fixed by RFC 27
constexpr size_t kCurveKeyBytes = 32;
// How often the handler wakes without requests, so that refusal summaries are printed even when the refusals stop.
constexpr int kFlushMillis = 1000;

}  // namespace

ZapAuthenticator& ZapAuthenticator::instance() {
  // Never destroyed, like the context: its thread blocks in the context until the process exits.
  static ZapAuthenticator* zap = new ZapAuthenticator();
  return *zap;
}

ZapAuthenticator::ZapAuthenticator() {
  // Bound before any server socket exists: a CURVE server that finds no handler admits every client.
  try {
    socket_ = zmq::socket_t(context(), zmq::socket_type::rep);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, kFlushMillis);
    socket_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    started_ = Status::Errorf("cannot start the ZAP handler on {}: {}", kZapEndpoint, e.what());
    return;
  }
  std::thread([this] { run(); }).detach();
}

Result<std::string> ZapAuthenticator::add_domain(std::set<std::string> allowed, bool any_client) {
  if (!started_.ok()) return started_;
  std::lock_guard lock(mu_);
  std::string domain = fmt::format("ll-server-{}", next_domain_++);
  domains_.emplace(domain, Domain{domain, std::move(allowed), refusal_log(domain), any_client});
  return domain;
}

LogLimiter ZapAuthenticator::refusal_log(const std::string& label) {
  return LogLimiter({.what = "refused handshakes", .sources = "keys"},
                    [label](const std::string& line) { log::warn("net", "{}: {}", label, line); });
}

void ZapAuthenticator::set_label(const std::string& domain, const std::string& label) {
  std::lock_guard lock(mu_);
  if (auto it = domains_.find(domain); it != domains_.end()) {
    it->second.label = label;
    it->second.refusals = refusal_log(label);
  }
}

void ZapAuthenticator::allow(const std::string& domain, const std::string& public_key) {
  std::lock_guard lock(mu_);
  if (auto it = domains_.find(domain); it != domains_.end()) it->second.allowed.insert(public_key);
}

void ZapAuthenticator::disallow(const std::string& domain, const std::string& public_key) {
  std::lock_guard lock(mu_);
  if (auto it = domains_.find(domain); it != domains_.end()) it->second.allowed.erase(public_key);
}

void ZapAuthenticator::remove_domain(const std::string& domain) {
  std::lock_guard lock(mu_);
  domains_.erase(domain);
}

void ZapAuthenticator::run() {
  for (;;) {
    std::vector<zmq::message_t> request;
    try {
      if (!zmq::recv_multipart(socket_, std::back_inserter(request))) {
        std::lock_guard lock(mu_);
        for (auto& [name, d] : domains_) d.refusals.flush();
        continue;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      continue;  // EINTR
    }
    std::vector<zmq::message_t> reply = answer(request);
    try {
      zmq::send_multipart(socket_, reply);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
    }
  }
}

// ZAP request (RFC 27), one frame each:
//   "1.0" | request id | domain | client address | routing id | mechanism | credentials...
//   (CURVE credentials: one frame, the client's 32-byte public key)
// Reply: "1.0" | request id | status code ("200" or "400") | status text | user id | metadata (empty).
// The user id of an accepted client is its Z85 key; messages from it carry that as "User-Id".
std::vector<zmq::message_t> ZapAuthenticator::answer(const std::vector<zmq::message_t>& request) {
  auto reply = [&request](std::string_view code, std::string_view text, std::string_view user_id = {}) {
    std::vector<zmq::message_t> r;
    r.emplace_back(std::string_view("1.0"));
    r.emplace_back(request.size() > 1 ? request[1].to_string_view() : std::string_view());
    r.emplace_back(code);
    r.emplace_back(text);
    r.emplace_back(user_id);
    r.emplace_back();
    return r;
  };
  if (request.size() < 6 || request[0].to_string_view() != "1.0") return reply("400", "malformed ZAP request");
  const std::string domain = request[2].to_string();
  const std::string address = request[3].to_string();
  const std::string mechanism = request[5].to_string();
  if (mechanism != "CURVE") return reply("400", "only CURVE is accepted");
  if (request.size() != 7 || request[6].size() != kCurveKeyBytes) return reply("400", "malformed CURVE credentials");
  char key[41];
  if (zmq_z85_encode(key, static_cast<const uint8_t*>(request[6].data()), kCurveKeyBytes) == nullptr) {
    return reply("400", "malformed CURVE credentials");
  }
  std::lock_guard lock(mu_);
  auto it = domains_.find(domain);
  if (it == domains_.end()) return reply("400", "unknown server");
  Domain& d = it->second;
  if (d.any_client || d.allowed.count(key) != 0) return reply("200", "OK", key);
  d.refusals.log(key, fmt::format("refused client key {} from {}: not in the allow-list", key, address));
  return reply("400", "client key not allowed");
}

}  // namespace ll::net
