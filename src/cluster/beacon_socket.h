#pragma once
// The UDP multicast sockets beacons travel on (cluster/beacon.h for what they carry).
// Sender: sends each beacon out of every IPv4 interface that is up and can multicast (TTL 1:
// the local network only). Receiver: joins the group on every such interface.
// Threading: one thread at a time per socket.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"

namespace ll::cluster {

class BeaconSender {
 public:
  static Result<std::unique_ptr<BeaconSender>> open(uint16_t port);
  ~BeaconSender();
  // Ok when it left through at least one interface.
  Status send(const std::string& packet);

 private:
  BeaconSender(int fd, uint16_t port) : fd_(fd), port_(port) {}
  int fd_;
  uint16_t port_;
};

struct ReceivedBeacon {
  std::string packet;
  std::string source_ip;
};

class BeaconReceiver {
 public:
  static Result<std::unique_ptr<BeaconReceiver>> open(uint16_t port);
  ~BeaconReceiver();
  // Waits up to `timeout` for one datagram.
  Result<std::optional<ReceivedBeacon>> receive(std::chrono::milliseconds timeout);

 private:
  explicit BeaconReceiver(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace ll::cluster
