// Server: a bound ROUTER serving many peers; CURVE server authenticated by the process's ZAP handler.
#include <fmt/format.h>

#include <atomic>
#include <cstdio>

#include "core/log.h"
#include "core/log_limiter.h"
#include "net/endpoint.h"
#include "net/socket_setup.h"
#include "net/transport.h"
#include "net/zap_authenticator.h"

namespace ll::net {

struct Server::Impl {
  zmq::socket_t socket;
  Limits limits;
  std::string endpoint;
  std::string zap_domain;  // empty when insecure
  std::atomic<uint64_t> rejected{0};
  // A peer may send garbage as fast as it likes; the log may not grow as fast.
  LogLimiter rejections{{.what = "rejected messages", .sources = "peers"}};  // named once bound

  ~Impl() {
    socket.close();
    if (!zap_domain.empty()) ZapAuthenticator::instance().remove_domain(zap_domain);
  }
};

Result<std::unique_ptr<Server>> Server::bind(const std::string& endpoint, SecurityOptions security, Limits limits) {
  LL_RETURN_IF_ERROR(check_endpoint(endpoint, /*for_bind=*/true));
  LL_RETURN_IF_ERROR(detail::check_security(endpoint, security));
  if (!security.insecure) {
    for (const auto& key : security.allowed) {
      if (!is_valid_z85_key(key)) return Status::Errorf("allowed key \"{}\" is not 40 characters of Z85", key);
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  try {
    impl->socket = zmq::socket_t(context(), zmq::socket_type::router);
    detail::apply_common_options(impl->socket, limits);
    // Sending to a peer that is gone fails instead of being dropped silently.
    impl->socket.set(zmq::sockopt::router_mandatory, true);
    if (!security.insecure) {
      LL_ASSIGN_OR_RETURN(impl->zap_domain, ZapAuthenticator::instance().add_domain(std::move(security.allowed), security.any_client));
      impl->socket.set(zmq::sockopt::zap_domain, impl->zap_domain);
      impl->socket.set(zmq::sockopt::curve_server, true);
      impl->socket.set(zmq::sockopt::curve_secretkey, security.keys.secret_key);
    }
    if (is_ipv6_endpoint(endpoint)) impl->socket.set(zmq::sockopt::ipv6, true);
    impl->socket.bind(bindable_endpoint(endpoint));
    impl->endpoint = impl->socket.get(zmq::sockopt::last_endpoint);
    impl->rejections = LogLimiter(
        {.what = "rejected messages", .sources = "peers"},
        [endpoint = impl->endpoint](const std::string& line) { log::warn("net", "server {}: {}", endpoint, line); });
  } catch (const zmq::error_t& e) {
    return Status::Errorf("cannot bind {}: {}", endpoint, e.what());
  }
  if (!impl->zap_domain.empty()) ZapAuthenticator::instance().set_label(impl->zap_domain, "server " + impl->endpoint);
  std::unique_ptr<Server> server(new Server());
  server->impl_ = std::move(impl);
  return server;
}

Server::~Server() = default;

void Server::allow(const std::string& public_key) {
  if (impl_->zap_domain.empty()) return;  // insecure: nobody is authenticated
  if (!is_valid_z85_key(public_key)) {
    log::warn("net", "server {}: ignoring allowed key \"{}\": not 40 characters of Z85", impl_->endpoint, public_key);
    return;
  }
  ZapAuthenticator::instance().allow(impl_->zap_domain, public_key);
}

void Server::disallow(const std::string& public_key) {
  if (!impl_->zap_domain.empty()) ZapAuthenticator::instance().disallow(impl_->zap_domain, public_key);
}

const std::string& Server::endpoint() const { return impl_->endpoint; }

Result<std::optional<Incoming>> Server::receive(std::chrono::milliseconds timeout) {
  std::vector<zmq::message_t> parts;
  impl_->rejections.flush();
  try {
    if (!detail::receive_parts(impl_->socket, timeout, parts)) return std::optional<Incoming>();
  } catch (const zmq::error_t& e) {
    return Status::Errorf("receive on {}: {}", impl_->endpoint, e.what());
  }
  // ROUTER layout: [routing id of the peer] [message parts...]; a peer always sends at least one part.
  Incoming in;
  in.peer = parts[0].to_string();
  if (parts.size() > 1) {
    // Connection metadata travels with every received part.
    if (const char* address = zmq_msg_gets(parts[1].handle(), "Peer-Address")) in.peer_address = address;
    if (const char* key = zmq_msg_gets(parts[1].handle(), "User-Id")) in.peer_key = key;
  }
  parts.erase(parts.begin());
  auto message = decode(parts, impl_->limits);
  if (!message.ok()) {
    impl_->rejected.fetch_add(1, std::memory_order_relaxed);
    impl_->rejections.log(in.peer_key.empty() ? in.peer_address + in.peer : in.peer_key,
                          fmt::format("rejected a message from peer {} ({}{}{}): {}", detail::hex(in.peer),
                                      in.peer_address.empty() ? "unknown address" : in.peer_address,
                                      in.peer_key.empty() ? "" : ", key ", in.peer_key, message.error()));
    return std::optional<Incoming>();
  }
  in.message = std::move(message).value();
  return std::optional<Incoming>(std::move(in));
}

Status Server::send(const std::string& peer, const wire::Envelope& e, std::vector<zmq::message_t> frames) {
  std::vector<zmq::message_t> parts = encode(e, std::move(frames));
  parts.insert(parts.begin(), zmq::message_t(peer.data(), peer.size()));
  return detail::send_parts(impl_->socket, parts, "peer " + detail::hex(peer));
}

uint64_t Server::rejected() const { return impl_->rejected.load(std::memory_order_relaxed); }

zmq::socket_t& Server::socket() { return impl_->socket; }

}  // namespace ll::net
