#include "plan/what_if.h"

#include <sstream>

#include "core/device_list.h"
#include "core/quantity.h"

namespace ll::plan {

Result<std::vector<profile::DeviceProfile>> what_if_devices(const std::string& text, const profile::DeviceProfile& measured) {
  using enum DeviceSetting;
  LL_ASSIGN_OR_RETURN(auto described,
                      parse_device_list(text, {Speed, Cpu, Mem, Preset, Power, Idle, Radio, Battery}));
  std::vector<profile::DeviceProfile> devices;
  for (const DeviceDescription& w : described) {
    profile::DeviceProfile d = measured;
    d.name = w.name;
    d.usable_memory_bytes = w.memory.value_or(measured.usable_memory_bytes);
    // A share of cores against the measured device's threads, as if its speed scaled with cores.
    const double speed = w.speed.value_or(w.cpu ? *w.cpu / measured.threads : 1.0);
    d.energy = w.energy;
    d.battery_percent = w.battery_percent;
    for (double& t : d.decode_seconds) t /= speed;
    for (double& t : d.prompt_seconds_per_token) t /= speed;
    devices.push_back(std::move(d));
  }
  return devices;
}

Result<profile::LinkProfile> parse_link(const std::string& text) {
  profile::LinkProfile l;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return Status::Errorf("'{}' is not key=value", item);
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "rtt") {
      LL_ASSIGN_OR_RETURN(l.rtt_seconds, parse_duration(value));
    } else if (key == "bw") {
      LL_ASSIGN_OR_RETURN(l.bandwidth_bytes_per_s, parse_byte_rate(value));
    } else {
      return Status::Errorf("unknown link field '{}': use rtt and bw", key);
    }
  }
  if (l.bandwidth_bytes_per_s <= 0) return Status::Error("a link needs bw=..., e.g. rtt=0.5ms,bw=125M");
  return l;
}

}  // namespace ll::plan
