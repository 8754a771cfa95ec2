// Client: a DEALER connected to one server, with a socket monitor that reports a lost or refused link.
#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "core/log.h"
#include "net/endpoint.h"
#include "net/socket_setup.h"
#include "net/transport.h"

namespace ll::net {
namespace {

constexpr int kMonitoredEvents = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

std::string describe_event(uint16_t event, uint32_t value, const std::string& endpoint) {
  switch (event) {
    case ZMQ_EVENT_CONNECT_RETRIED:
      return fmt::format("nothing is listening at {} (the connection was refused or failed): is it running, "
                         "listening on that port, and reachable from here?",
                         endpoint);
    case ZMQ_EVENT_DISCONNECTED:
      return "connection closed by the server or lost (heartbeat timeout)";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return fmt::format("the server refused our key (ZAP status {})", value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      return fmt::format("handshake failed: protocol error {:#x} (wrong server key or not a CURVE server?)", value);
    default:
      return fmt::format("handshake failed: {} (wrong server key, or the server refused us?)", zmq_strerror(value));
  }
}

}  // namespace

struct Client::Impl {
  zmq::socket_t socket;
  zmq::socket_t monitor;  // PAIR receiving the events of `socket`
  Limits limits;
  std::string endpoint;
  std::string disconnect_reason;  // empty while the link is believed alive
  bool ever_connected = false;    // a TCP connection was made (the handshake may still fail)
  std::atomic<uint64_t> rejected{0};

  ~Impl() {
    if (monitor) zmq_socket_monitor(socket.handle(), nullptr, 0);
    socket.close();
    monitor.close();
  }

  // Reads the pending monitor events without waiting.
  // Monitor message (libzmq 4.x): [uint16 event, uint32 value, native byte order] [endpoint string].
  void drain_events() {
    try {
      for (;;) {
        zmq::message_t event;
        if (!monitor.recv(event, zmq::recv_flags::dontwait)) return;
        if (event.more()) {
          zmq::message_t address;
          (void)monitor.recv(address);
        }
        if (event.size() < 6 || !disconnect_reason.empty()) continue;
        uint16_t id;
        uint32_t value;
        std::memcpy(&id, event.data(), sizeof(id));
        std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof(id), sizeof(value));
        if (id == ZMQ_EVENT_CONNECTED) {
          ever_connected = true;
          continue;
        }
        // A retry after a connection was made is libzmq reconnecting; the disconnection already said why.
        if (id == ZMQ_EVENT_CONNECT_RETRIED && ever_connected) continue;
        disconnect_reason = describe_event(id, value, endpoint);
      }
    } catch (const zmq::error_t& e) {
      if (disconnect_reason.empty()) disconnect_reason = fmt::format("connection monitor failed: {}", e.what());
    }
  }
};

Result<std::unique_ptr<Client>> Client::connect(const std::string& endpoint, const std::string& server_public_key,
                                                SecurityOptions security, Limits limits) {
  LL_RETURN_IF_ERROR(check_endpoint(endpoint, /*for_bind=*/false));
  LL_RETURN_IF_ERROR(detail::check_security(endpoint, security));
  LL_RETURN_IF_ERROR(resolve_endpoint_host(endpoint));
  if (!security.insecure && !is_valid_z85_key(server_public_key)) {
    return Status::Errorf("server key \"{}\" for {} is not 40 characters of Z85", server_public_key, endpoint);
  }
  static std::atomic<uint64_t> next_monitor{0};
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  impl->endpoint = endpoint;
  try {
    impl->socket = zmq::socket_t(context(), zmq::socket_type::dealer);
    detail::apply_common_options(impl->socket, limits);
    if (!security.insecure) {
      impl->socket.set(zmq::sockopt::curve_serverkey, server_public_key);
      impl->socket.set(zmq::sockopt::curve_publickey, security.keys.public_key);
      impl->socket.set(zmq::sockopt::curve_secretkey, security.keys.secret_key);
    }
    // The monitor is attached before connecting so that no event is missed.
    const std::string monitor_endpoint = fmt::format("inproc://ll-net-monitor-{}", next_monitor++);
    if (zmq_socket_monitor(impl->socket.handle(), monitor_endpoint.c_str(), kMonitoredEvents) != 0) {
      throw zmq::error_t();
    }
    impl->monitor = zmq::socket_t(context(), zmq::socket_type::pair);
    impl->monitor.set(zmq::sockopt::linger, 0);
    impl->monitor.connect(monitor_endpoint);
    if (is_ipv6_endpoint(endpoint)) impl->socket.set(zmq::sockopt::ipv6, true);
    impl->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return Status::Errorf("cannot connect to {}: {}", endpoint, e.what());
  }
  std::unique_ptr<Client> client(new Client());
  client->impl_ = std::move(impl);
  return client;
}

Client::~Client() = default;

Status Client::send(const wire::Envelope& e, std::vector<zmq::message_t> frames) {
  std::vector<zmq::message_t> parts = encode(e, std::move(frames));
  return detail::send_parts(impl_->socket, parts, "server " + impl_->endpoint);
}

Result<std::optional<Message>> Client::receive(std::chrono::milliseconds timeout) {
  // DEALER layout: the message parts as the server sent them, without routing id.
  std::vector<zmq::message_t> parts;
  try {
    if (!detail::receive_parts(impl_->socket, timeout, parts)) return std::optional<Message>();
  } catch (const zmq::error_t& e) {
    return Status::Errorf("receive from {}: {}", impl_->endpoint, e.what());
  }
  auto message = decode(parts, impl_->limits);
  if (!message.ok()) {
    impl_->rejected.fetch_add(1, std::memory_order_relaxed);
    log::warn("net", "client rejected a message from server {}: {}", impl_->endpoint, message.error());
    return std::optional<Message>();
  }
  return std::optional<Message>(std::move(message).value());
}

bool Client::disconnected() {
  impl_->drain_events();
  return !impl_->disconnect_reason.empty();
}

std::string Client::disconnect_reason() {
  impl_->drain_events();
  return impl_->disconnect_reason;
}

bool Client::ever_connected() {
  impl_->drain_events();
  return impl_->ever_connected;
}

uint64_t Client::rejected() const { return impl_->rejected.load(std::memory_order_relaxed); }

const std::string& Client::endpoint() const { return impl_->endpoint; }

zmq::socket_t& Client::socket() { return impl_->socket; }

}  // namespace ll::net
