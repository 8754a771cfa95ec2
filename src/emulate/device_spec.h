#pragma once
// Emulated devices for a cluster on one machine, described in the grammar of `--devices`
// (core/device_list.h): "3" (three equal devices) or
// "fast:cpu=1.0,mem=4G,bw=100mbit;slow:cpu=0.3,mem=1G,bw=20mbit[,threads=1][,cores=0-1]" (a name,
// then the share of one core and the memory each may use, the rate of its network link, and
// the cores it may run on), or presets such as "phone-mid;phone-low;laptop" or
// "a:preset=pi4,mem=2G" (core/device_presets.h). A device's speed may also change while it runs:
// "b:cpu=0.5@0s/0.15@3s/0.5@20s" (its share from each time on) and "b:busy=1@3s/0@20s" (busy
// processes beside its worker, taking from its share as another app would), applied by
// LocalCluster::start_schedules with the times counted from that call, as are its faults:
// "b:fail=kill@5s,restart@12s", "b:fail=stop@5s+3s", "b:fail=drop@5s+3s".
#include <cstdint>
#include <string>
#include <vector>

#include "core/device_list.h"
#include "core/status.h"

namespace ll::emulate {

struct SpeedSchedule {
  std::vector<TimedValue> cpu;   // shares of cores; the first, at 0s, is the one the device starts with
  std::vector<TimedValue> busy;  // numbers of busy processes
  bool empty() const { return cpu.empty() && busy.empty(); }
  int max_busy() const;
};

struct DeviceSpec {
  std::string name;
  double cpu = 0;           // cores (0: not capped); with a schedule, the share it starts with
  uint64_t memory = 0;      // bytes (0: not capped)
  int threads = 0;          // 0: the default
  uint64_t link_bps = 0;    // link rate in bits per second, both directions (0: not shaped)
  // Cores this device's worker may run on (empty: any). Devices sharing one core never compute
  // at the same time, so each has the memory bus to itself while it runs, as separate machines
  // would; on a shared bus two computing workers each read weights ~20% slower.
  std::vector<int> cores{};
  // The separate machine it stands for (its own network and UTS namespaces, this host name);
  // empty: this machine.
  std::string host{};
  SpeedSchedule schedule{};
  std::vector<FaultStep> faults{};  // its fail= schedule, in time order
  bool drops_link() const;          // a fault cuts its link, so it needs a namespace
};

Result<std::vector<DeviceSpec>> parse_devices(const std::string& text);

}  // namespace ll::emulate
