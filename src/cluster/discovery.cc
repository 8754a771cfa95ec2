#include "cluster/discovery.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "cluster/beacon_socket.h"
#include "core/log_limiter.h"

namespace ll::cluster {

Result<std::vector<DeviceSighting>> discover(const std::vector<PairedDevice>& paired, const DiscoveryOptions& options) {
  std::vector<DeviceSighting> out;
  std::map<std::string, std::string> signing_keys;
  std::map<std::string, size_t> index;
  for (const PairedDevice& d : paired) {
    signing_keys[d.public_key] = d.signing_key;
    index[d.public_key] = out.size();
    out.push_back({d, false});
  }
  if (paired.empty()) return out;
  LL_ASSIGN_OR_RETURN(auto receiver, BeaconReceiver::open(options.port));
  BeaconFilter filter(options.max_age);
  for (const PairedDevice& d : paired) {
    if (d.last_seen_ms > 0) filter.seen(d.public_key, d.last_seen_ms);
  }
  LogLimiter ignored({.what = "ignored beacons", .sources = "addresses"}, options.log);
  size_t heard = 0;
  const auto deadline = std::chrono::steady_clock::now() + options.wait;
  while (heard < out.size()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    LL_ASSIGN_OR_RETURN(auto got, receiver->receive(std::min(left, std::chrono::milliseconds(200))));
    if (!got) continue;
    auto beacon = filter.accept(got->packet, signing_keys, unix_millis());
    if (!beacon.ok()) {
      // Strangers' beacons (other heads' workers) are normal; a paired key's forged or replayed one is not.
      auto parsed = parse_beacon(got->packet);
      if (parsed.ok() && signing_keys.count(parsed->public_key) != 0) {
        ignored.log(got->source_ip, fmt::format("discovery: ignored a beacon from {}: {}", got->source_ip, beacon.error()));
      }
      continue;
    }
    DeviceSighting& s = out[index.at(beacon->public_key)];
    if (!s.reachable) ++heard;
    s.reachable = true;
    s.device.endpoint = fmt::format("tcp://{}:{}", got->source_ip, beacon->port);
    s.device.threads = beacon->threads;
    s.device.memory_limit = beacon->memory_limit;
    s.device.last_seen_ms = beacon->time_ms;
  }
  ignored.flush();
  return out;
}

Result<HeadSetup> paired_cluster_setup(const std::string& dir, const DiscoveryOptions& options,
                                       const std::function<void(const std::string&)>& progress) {
  LL_ASSIGN_OR_RETURN(const std::vector<PairedDevice> paired, load_paired_devices(dir));
  if (paired.empty()) {
    return Status::Errorf("no device is paired with this head ({}): run `lingualinked pair` here and "
                          "`lingualinked worker --join CODE` on each device",
                          dir);
  }
  // The key is checked before listening, so that a key file with wrong permissions is named at once.
  if (auto key = net::load_keypair(dir + "/" + kHeadKeyFile); !key.ok()) return key.status();
  LL_ASSIGN_OR_RETURN(std::vector<DeviceSighting> sightings, discover(paired, options));
  std::vector<PairedDevice> updated;
  std::vector<const PairedDevice*> reachable;
  for (const DeviceSighting& s : sightings) updated.push_back(s.device);
  for (size_t i = 0; i < sightings.size(); ++i) {
    if (sightings[i].reachable) reachable.push_back(&updated[i]);
  }
  LL_RETURN_IF_ERROR(save_paired_devices(dir, updated));
  if (reachable.empty()) {
    return Status::Errorf("none of the {} paired devices is reachable now: is `lingualinked worker` running on them, "
                          "on this network? (`lingualinked devices` lists them)",
                          paired.size());
  }
  std::sort(reachable.begin(), reachable.end(), [](const PairedDevice* a, const PairedDevice* b) { return a->name < b->name; });
  HeadSetup setup;
  setup.key_path = dir + "/" + kHeadKeyFile;
  std::string names;
  for (const PairedDevice* d : reachable) {
    setup.workers.push_back(d->endpoint);
    setup.worker_keys += (setup.worker_keys.empty() ? "" : ",") + d->public_key;
    names += fmt::format("{}{} ({})", names.empty() ? "" : ", ", d->name, d->endpoint);
  }
  if (progress) progress(fmt::format("cluster: {} of {} paired devices reachable: {}", reachable.size(), paired.size(), names));
  return setup;
}

}  // namespace ll::cluster
