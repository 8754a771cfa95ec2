#pragma once
// The one grammar of `--devices`, for every command: "3" (three devices, dev1..dev3) or
// "fast:cpu=1.0,mem=4G,bw=100mbit;slow:speed=0.5,cores=0-1" (a name of letters, digits, '-' and
// '_', then settings). Settings:
//   cpu=0.5      share of the cores an emulated device may use (0.01 to 256), or a schedule of
//                shares, "cpu=0.5@0s/0.15@3s/0.5@20s": each from its time on, the first at 0s
//   speed=0.5    a what-if device: a measured profile's times divided by this
//   mem=4G       memory the device may use (parse_byte_size)
//   threads=2    threads of its worker
//   bw=20mbit    the rate of its network link (parse_bit_rate)
//   cores=0-1    the cores it may run on: one core or a range
//   host=pi-1    the host an emulated device stands for (letters, digits and '-', at most 63):
//                devices with different hosts run in network and UTS namespaces of their own,
//                with that host name, so the head takes them for separate machines
//   busy=1@3s/0@20s  busy-looping processes (0 to 64) beside an emulated device's worker from
//                those times on, as if another app ran on it
//   fail=kill@5s,restart@12s  faults of an emulated device at those times: kill (SIGKILL), stop@5s+3s
//                (frozen, SIGSTOP, for 3 s; without +: for good), restart (a killed worker starts again
//                with its key and address), drop@5s+3s (its network link cut, in its namespace, for 3 s
//                or for good). The steps after fail= follow it, separated by ',' or '/'.
//   preset=phone-mid  a named device (core/device_presets.h): its cpu, mem and bw, and its energy
//                figures; a device named after a preset ("phone-mid;phone-low;laptop") takes that preset.
//                Settings given beside it override the preset's.
//   power=4W     the device's power draw while it computes (W or mW)
//   idle=0.4W    its draw while it waits for its turn (at most power=)
//   radio=40nJ   its radio's energy per byte sent or received (J, mJ, uJ, nJ or pJ)
//                power=, idle= and radio= come together, unless a preset gives the others
//   battery=15%  its battery level (0 to 100); below core/energy_figures.h's kLowBatteryPercent
//                the planner gives it no more than its share of the model
// Schedule times are durations (parse_duration: "3s", "300ms"), strictly increasing, at most a day.
// Each command honours some of them; any other is an error that names the ones it does.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/energy_figures.h"
#include "core/status.h"

namespace ll {

enum class DeviceSetting : uint8_t { Cpu, Speed, Mem, Threads, Bw, Cores, Busy, Fail, Host, Preset, Power, Idle, Radio, Battery };

// One step of a schedule: `value` from `seconds` after the schedule starts.
struct TimedValue {
  double seconds = 0;
  double value = 0;
  bool operator==(const TimedValue&) const = default;
};

enum class FaultKind : uint8_t { Kill, Stop, Restart, Drop };

// One fault of a fail= schedule.
struct FaultStep {
  double seconds = 0;   // after the schedule starts
  FaultKind kind = FaultKind::Kill;
  double duration = 0;  // stop and drop: undone after this many seconds; 0: for good
  bool operator==(const FaultStep&) const = default;
};

struct DeviceDescription {
  std::string name;
  std::optional<double> cpu{};       // a share of cores; with a schedule, its first share
  std::vector<TimedValue> cpu_schedule{};   // empty: the share is fixed
  std::vector<TimedValue> busy_schedule{};  // busy processes (whole numbers); empty: none
  std::vector<FaultStep> fail_schedule{};   // in time order; empty: none
  std::optional<double> speed{};     // above 0
  std::optional<uint64_t> memory{};  // bytes
  std::optional<int> threads{};      // 1..256
  std::optional<uint64_t> link_bps{};
  std::vector<int> cores{};  // empty: any
  std::string host{};        // empty: this machine
  std::string preset{};      // the preset it started from; empty: none
  std::optional<EnergyFigures> energy{};  // all three figures, checked; none: unknown
  std::optional<double> battery_percent{};
};

// The devices `text` describes, each setting checked; `honoured` are the settings the caller uses.
Result<std::vector<DeviceDescription>> parse_device_list(const std::string& text,
                                                         std::initializer_list<DeviceSetting> honoured);

}  // namespace ll
