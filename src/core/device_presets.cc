#include "core/device_presets.h"

#include <fmt/format.h>

namespace ll {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kMbit = 1000 * 1000;

// docs/ENERGY.md gives the sources and reasoning behind every figure.
constexpr DevicePreset kPresets[] = {
    {"phone-low", "a budget phone (Cortex-A53/A55 cores, 3-4 GB, Wi-Fi 4)", 0.25, 1024 * kMiB, 50 * kMbit,
     {.compute_watts = 2.0, .idle_watts = 0.3, .radio_joules_per_byte = 100e-9}},
    {"phone-mid", "a mid-range phone (Cortex-A78-class big cores, 8 GB, Wi-Fi 5)", 0.8, 3072 * kMiB, 200 * kMbit,
     {.compute_watts = 4.0, .idle_watts = 0.4, .radio_joules_per_byte = 40e-9}},
    {"pi4", "a Raspberry Pi 4 Model B, 4 GB (4x Cortex-A72, onboard Wi-Fi 5)", 0.35, 3072 * kMiB, 100 * kMbit,
     {.compute_watts = 6.0, .idle_watts = 2.7, .radio_joules_per_byte = 60e-9}},
    {"laptop", "a thin laptop on battery (2-4 performance cores, 16 GB, Wi-Fi 6)", 2.0, 8192 * kMiB, 400 * kMbit,
     {.compute_watts = 25.0, .idle_watts = 4.0, .radio_joules_per_byte = 30e-9}},
};

}  // namespace

std::span<const DevicePreset> device_presets() { return kPresets; }

const DevicePreset* find_device_preset(const std::string& name) {
  for (const DevicePreset& p : kPresets) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::string device_preset_names() {
  std::string out;
  for (const DevicePreset& p : kPresets) out += fmt::format("{}{}", out.empty() ? "" : ", ", p.name);
  return out;
}

}  // namespace ll
