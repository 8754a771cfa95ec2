#include "emulate/device_spec.h"

#include "core/device_list.h"

namespace ll::emulate {

Result<std::vector<DeviceSpec>> parse_devices(const std::string& text) {
  using enum DeviceSetting;
  LL_ASSIGN_OR_RETURN(auto described, parse_device_list(text, {Cpu, Mem, Threads, Bw, Cores}));
  std::vector<DeviceSpec> out;
  for (DeviceDescription& d : described) {
    out.push_back({.name = std::move(d.name),
                   .cpu = d.cpu.value_or(0),
                   .memory = d.memory.value_or(0),
                   .threads = d.threads.value_or(0),
                   .link_bps = d.link_bps.value_or(0),
                   .cores = std::move(d.cores)});
  }
  return out;
}

}  // namespace ll::emulate
