#pragma once
// What Server and Client share: socket options, the security precondition, multipart send and receive.
#include <zmq.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/transport.h"

namespace ll::net::detail {

// Insecure only on loopback; a secure socket needs a valid key pair and a libzmq with CURVE.
Status check_security(const std::string& endpoint, const SecurityOptions& security);
// Linger, queue limits, message size limit, heartbeats, timeouts. Throws zmq::error_t.
void apply_common_options(zmq::socket_t& socket, const Limits& limits);
// Sends the parts as one multipart message, moving their contents.
Status send_parts(zmq::socket_t& socket, std::vector<zmq::message_t>& parts, std::string_view peer);
// Waits up to `timeout` for a message and appends all its parts; false on timeout. Throws zmq::error_t.
bool receive_parts(zmq::socket_t& socket, std::chrono::milliseconds timeout, std::vector<zmq::message_t>& parts);
std::string hex(std::string_view bytes);

}  // namespace ll::net::detail
