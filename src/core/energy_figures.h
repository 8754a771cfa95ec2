#pragma once
// What a device's energy costs: its power draw while computing and while idle, its radio's
// energy per byte, and its battery level. The one place for their limits (a figure outside them
// is a typo, not a device); core/quantity.h parses them.
#include <optional>
#include <string>

#include "core/status.h"

namespace ll {

struct EnergyFigures {
  double compute_watts = 0;          // the whole device while it computes a segment
  double idle_watts = 0;             // awake, waiting for its turn (radio associated, screen off)
  double radio_joules_per_byte = 0;  // each byte it sends or receives
};

// Below this battery level a device takes no more than its share of the model's units.
constexpr double kLowBatteryPercent = 20;

// Both powers in (0, 2000] W, idle no more than compute, radio in [0, 1 mJ] per byte.
Status check_energy_figures(const EnergyFigures& e, const std::string& device);
// 0 to 100.
Status check_battery_percent(double percent, const std::string& device);

}  // namespace ll
