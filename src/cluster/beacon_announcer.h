#pragma once
// A paired worker's beacons: one every `interval` on a thread of its own, from creation until
// destruction.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "cluster/beacon.h"
#include "cluster/beacon_socket.h"
#include "core/status.h"

namespace ll::cluster {

class BeaconAnnouncer {
 public:
  // `beacon`: what to announce (its time is set at each send).
  static Result<std::unique_ptr<BeaconAnnouncer>> start(const net::KeyPair& keys, Beacon beacon, uint16_t port = kBeaconPort,
                                                        std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~BeaconAnnouncer();

 private:
  BeaconAnnouncer() = default;
  void run();

  std::unique_ptr<BeaconSender> sender_;
  BeaconSigningKeys keys_;
  Beacon beacon_;
  std::chrono::milliseconds interval_{};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ll::cluster
