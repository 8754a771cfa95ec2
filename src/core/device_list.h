#pragma once
// The one grammar of `--devices`, for every command: "3" (three devices, dev1..dev3) or
// "fast:cpu=1.0,mem=4G,bw=100mbit;slow:speed=0.5,cores=0-1" (a name of letters, digits, '-' and
// '_', then settings). Settings:
//   cpu=0.5      share of the cores an emulated device may use
//   speed=0.5    a what-if device: a measured profile's times divided by this
//   mem=4G       memory the device may use (parse_byte_size)
//   threads=2    threads of its worker
//   bw=20mbit    the rate of its network link (parse_bit_rate)
//   cores=0-1    the cores it may run on: one core or a range
// Each command honours some of them; any other is an error that names the ones it does.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ll {

enum class DeviceSetting : uint8_t { Cpu, Speed, Mem, Threads, Bw, Cores };

struct DeviceDescription {
  std::string name;
  std::optional<double> cpu{};       // above 0
  std::optional<double> speed{};     // above 0
  std::optional<uint64_t> memory{};  // bytes
  std::optional<int> threads{};      // 1..256
  std::optional<uint64_t> link_bps{};
  std::vector<int> cores{};  // empty: any
};

// The devices `text` describes, each setting checked; `honoured` are the settings the caller uses.
Result<std::vector<DeviceDescription>> parse_device_list(const std::string& text,
                                                         std::initializer_list<DeviceSetting> honoured);

}  // namespace ll
