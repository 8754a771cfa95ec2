#include "core/energy_figures.h"

#include <cmath>
#include <utility>

namespace ll {
namespace {

constexpr double kMaxWatts = 2000;           // above any laptop or phone charger
constexpr double kMaxJoulesPerByte = 1e-3;   // ten times a 2000s 3G modem (HSDPA: ~90 uJ per byte)

}  // namespace

Status check_energy_figures(const EnergyFigures& e, const std::string& device) {
  for (auto [watts, what] : {std::pair{e.compute_watts, "compute power"}, std::pair{e.idle_watts, "idle power"}}) {
    if (!std::isfinite(watts) || watts <= 0 || watts > kMaxWatts) {
      return Status::Errorf("device {}: its {} {:g} W is not above 0 and at most {:g} W", device, what, watts,
                            kMaxWatts);
    }
  }
  if (e.idle_watts > e.compute_watts) {
    return Status::Errorf("device {}: it draws {:g} W idle but {:g} W computing; computing draws at least as much",
                          device, e.idle_watts, e.compute_watts);
  }
  if (!std::isfinite(e.radio_joules_per_byte) || e.radio_joules_per_byte < 0 ||
      e.radio_joules_per_byte > kMaxJoulesPerByte) {
    return Status::Errorf("device {}: its radio's {:g} J per byte is not between 0 and {:g}", device,
                          e.radio_joules_per_byte, kMaxJoulesPerByte);
  }
  return Status::Ok();
}

Status check_battery_percent(double percent, const std::string& device) {
  if (!std::isfinite(percent) || percent < 0 || percent > 100) {
    return Status::Errorf("device {}: battery {:g}% is not between 0 and 100", device, percent);
  }
  return Status::Ok();
}

}  // namespace ll
