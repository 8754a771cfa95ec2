#pragma once
// Which paired devices are on the local network now: their beacons (cluster/beacon.h), heard
// for a moment, and the head setup that runs on every one of them (`--cluster`).
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cluster/beacon.h"
#include "cluster/head_setup.h"
#include "cluster/remembered.h"
#include "core/status.h"

namespace ll::cluster {

struct DiscoveryOptions {
  std::chrono::milliseconds wait{3000};  // workers beacon every second; stops early once all are heard
  uint16_t port = kBeaconPort;
  std::chrono::milliseconds max_age{30000};
  std::function<void(const std::string&)> log;  // forged and replayed beacons of paired keys; default: stderr
};

struct DeviceSighting {
  PairedDevice device;  // endpoint, threads, memory and last_seen from its beacon when heard
  bool reachable = false;
};

// Every paired device, in the order given, each reachable when a valid beacon of it was heard.
// Beacons of keys not in `paired` are ignored without a word; bad signatures and replays are logged.
Result<std::vector<DeviceSighting>> discover(const std::vector<PairedDevice>& paired, const DiscoveryOptions& options);

// The head setup for every reachable device paired with this head (config `dir`), in name order,
// with the head's remembered key; the sightings are written back to devices.json. An error when
// no device is paired or none is reachable.
Result<HeadSetup> paired_cluster_setup(const std::string& dir, const DiscoveryOptions& options,
                                       const std::function<void(const std::string&)>& progress);

}  // namespace ll::cluster
