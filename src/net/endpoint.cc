// Endpoint syntax, name resolution, and which endpoints keep traffic on this machine (the only
// places plain text is allowed).
#include "net/endpoint.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <string_view>

#include "net/transport.h"

namespace ll::net {
namespace {

struct TcpAddress {
  std::string host;  // without the brackets of an IPv6 address
  std::string port;
  bool bracketed = false;
};

// "tcp://[source;]destination" -> the destination's host and port; the port is empty when missing.
TcpAddress tcp_address(std::string_view endpoint) {
  std::string_view address = endpoint.substr(6);
  if (const auto semicolon = address.rfind(';'); semicolon != std::string_view::npos) {
    address = address.substr(semicolon + 1);
  }
  TcpAddress a;
  const auto colon = address.rfind(':');
  const auto bracket = address.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    a.host = address;
  } else {
    a.host = address.substr(0, colon);
    a.port = address.substr(colon + 1);
  }
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
    a.bracketed = true;
  }
  return a;
}

}  // namespace

Status check_endpoint(const std::string& endpoint, bool for_bind) {
  const std::string_view e = endpoint;
  if (e.starts_with("ipc://") || e.starts_with("inproc://")) return Status::Ok();
  if (!e.starts_with("tcp://")) {
    return Status::Errorf("{}: not an endpoint; write tcp://HOST:PORT (or ipc://PATH)", endpoint);
  }
  const TcpAddress a = tcp_address(e);
  if (a.host.empty()) return Status::Errorf("{}: no host; write tcp://HOST:PORT", endpoint);
  if (a.port.empty()) return Status::Errorf("{}: no port; write tcp://HOST:PORT", endpoint);
  const bool any_port = for_bind && (a.port == "*" || a.port == "0");
  if (!any_port && (a.port.find_first_not_of("0123456789") != std::string::npos || a.port.size() > 5 ||
                    std::stoi(a.port) < 1 || std::stoi(a.port) > 65535)) {
    return Status::Errorf("{}: port '{}' is not a number from 1 to 65535{}", endpoint, a.port,
                          for_bind ? " (or 0: any free port)" : "");
  }
  return Status::Ok();
}

Status resolve_endpoint_host(const std::string& endpoint) {
  if (!endpoint.starts_with("tcp://")) return Status::Ok();
  const TcpAddress a = tcp_address(endpoint);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(a.host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return Status::Errorf("cannot resolve host '{}': {}; check the name, or give its IP address", a.host,
                          gai_strerror(rc));
  }
  freeaddrinfo(found);
  return Status::Ok();
}

std::string bindable_endpoint(const std::string& endpoint) {
  if (!endpoint.starts_with("tcp://") || tcp_address(endpoint).host != "localhost") return endpoint;
  const auto at = endpoint.rfind("localhost");
  return endpoint.substr(0, at) + "127.0.0.1" + endpoint.substr(at + 9);
}

bool is_ipv6_endpoint(const std::string& endpoint) {
  return endpoint.starts_with("tcp://") && tcp_address(endpoint).bracketed;
}

bool is_loopback_endpoint(const std::string& endpoint) {
  const std::string_view e = endpoint;
  if (e.starts_with("ipc://") || e.starts_with("inproc://")) return true;
  if (!e.starts_with("tcp://")) return false;
  // "tcp://source;destination" connects from a chosen source; the destination is what matters.
  const TcpAddress a = tcp_address(e);
  if (a.port.empty()) return false;
  if (a.host == "localhost") return true;
  // Only literal addresses: a name other than localhost could resolve anywhere.
  in_addr v4{};
  if (inet_pton(AF_INET, a.host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, a.host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Status check_plain_text_allowed(const std::string& endpoint) {
  if (is_loopback_endpoint(endpoint)) return Status::Ok();
  const std::string port = endpoint.starts_with("tcp://") ? tcp_address(endpoint).port : "";
  const std::string p = port.empty() ? "PORT" : port;
  return Status::Errorf(
      "refusing unencrypted transport on {}: it is not a loopback endpoint; use CURVE keys (no --insecure), or a "
      "loopback endpoint: tcp://127.0.0.1:{}, tcp://[::1]:{}, tcp://localhost:{} or ipc://PATH",
      endpoint, p, p, p);
}

}  // namespace ll::net
