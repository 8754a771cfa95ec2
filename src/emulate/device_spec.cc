#include "emulate/device_spec.h"

#include <algorithm>

namespace ll::emulate {

int SpeedSchedule::max_busy() const {
  double most = 0;
  for (const TimedValue& step : busy) most = std::max(most, step.value);
  return static_cast<int>(most);
}

bool DeviceSpec::drops_link() const {
  return std::any_of(faults.begin(), faults.end(), [](const FaultStep& f) { return f.kind == FaultKind::Drop; });
}

Result<std::vector<DeviceSpec>> parse_devices(const std::string& text) {
  using enum DeviceSetting;
  LL_ASSIGN_OR_RETURN(auto described, parse_device_list(text, {Cpu, Mem, Threads, Bw, Cores, Busy, Fail, Host, Preset}));
  std::vector<DeviceSpec> out;
  for (DeviceDescription& d : described) {
    out.push_back({.name = std::move(d.name),
                   .cpu = d.cpu.value_or(0),
                   .memory = d.memory.value_or(0),
                   .threads = d.threads.value_or(0),
                   .link_bps = d.link_bps.value_or(0),
                   .cores = std::move(d.cores),
                   .host = std::move(d.host),
                   .schedule = {.cpu = std::move(d.cpu_schedule), .busy = std::move(d.busy_schedule)},
                   .faults = std::move(d.fail_schedule)});
  }
  return out;
}

}  // namespace ll::emulate
