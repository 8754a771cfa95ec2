#pragma once
// Named device presets for `--devices` ("phone-mid;phone-low;laptop", or "a:preset=pi4,mem=2G"):
// each a CPU share, a memory limit and a Wi-Fi link rate for an emulated device, and the energy
// figures the planner uses. The figures are estimates from public measurements; docs/ENERGY.md
// says where each comes from.
#include <cstdint>
#include <span>
#include <string>

#include "core/energy_figures.h"

namespace ll {

struct DevicePreset {
  const char* name;
  const char* stands_for;  // the kind of device, for docs and errors
  double cpu;              // sustained throughput, in cores of a desktop-class x86-64 core
  uint64_t memory;         // bytes an app may use
  uint64_t link_bps;       // Wi-Fi throughput as measured, not the PHY rate
  EnergyFigures energy;
};

std::span<const DevicePreset> device_presets();
// nullptr when no preset has this name.
const DevicePreset* find_device_preset(const std::string& name);
// "phone-low, phone-mid, pi4, laptop".
std::string device_preset_names();

}  // namespace ll
