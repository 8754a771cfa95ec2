#pragma once
// Measures a link over the real transport: a fresh Client (CURVE like every other link) sends
// Ping messages to a worker, which answers each with a Pong. The round-trip time is the median
// of empty pings; the bandwidth comes from pings carrying a payload, sized up until one takes
// long enough to time (so a slow link is not flooded and a fast one is not under-measured).
#include <chrono>
#include <string>

#include "core/status.h"
#include "net/transport.h"

namespace ll::cluster {

struct LinkMeasurement {
  double rtt_seconds = 0;
  double bandwidth_bytes_per_s = 0;
};

struct ProbeOptions {
  int rtt_pings = 9;
  size_t max_payload_bytes = 1u << 20;  // links that carry 1 MiB within min_timed are fast enough
  std::chrono::milliseconds min_timed{30};   // a payload ping must take this long to be timed
  std::chrono::milliseconds timeout{10000};  // per ping
};

Result<LinkMeasurement> probe_link(const std::string& endpoint, const std::string& public_key,
                                   const net::SecurityOptions& security, const ProbeOptions& options = {});

}  // namespace ll::cluster
