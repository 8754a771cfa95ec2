// Which endpoints keep traffic on this machine (the only places plain text is allowed).
#include <arpa/inet.h>

#include <string_view>

#include "net/transport.h"

namespace ll::net {

bool is_loopback_endpoint(const std::string& endpoint) {
  const std::string_view e = endpoint;
  if (e.starts_with("ipc://") || e.starts_with("inproc://")) return true;
  if (!e.starts_with("tcp://")) return false;
  std::string_view address = e.substr(6);
  // "tcp://source;destination" connects from a chosen source; the destination is what matters.
  if (const auto semicolon = address.rfind(';'); semicolon != std::string_view::npos) {
    address = address.substr(semicolon + 1);
  }
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string host(address.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") return true;
  // Only literal addresses: a name other than localhost could resolve anywhere.
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace ll::net
