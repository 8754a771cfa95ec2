#pragma once
// ZeroMQ endpoints as users write them, checked before a socket sees them: a mistake is named at
// once instead of ending in a bare EINVAL or in libzmq retrying a name that never resolves.
#include <string>

#include "core/status.h"

namespace ll::net {

// tcp://HOST:PORT (HOST a name, an IPv4 address or [IPv6]; for a bind also * or an interface),
// ipc://PATH or inproc://NAME: the syntax only.
Status check_endpoint(const std::string& endpoint, bool for_bind);
// For a connect: the HOST of a tcp:// endpoint resolves now (libzmq would retry forever).
Status resolve_endpoint_host(const std::string& endpoint);
// What libzmq binds for `endpoint`: "localhost" becomes 127.0.0.1, since libzmq binds only
// addresses and interface names.
std::string bindable_endpoint(const std::string& endpoint);
// Plain text stays on this machine: Ok for a loopback endpoint, else a refusal naming loopback
// endpoints (on the same port) that do bind.
Status check_plain_text_allowed(const std::string& endpoint);
// A tcp:// endpoint with a [bracketed] IPv6 address: its socket needs ZMQ_IPV6.
bool is_ipv6_endpoint(const std::string& endpoint);

}  // namespace ll::net
