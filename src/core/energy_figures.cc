#include "core/energy_figures.h"

#include <cmath>
#include <cstdlib>
#include <utility>

namespace ll {
namespace {

constexpr double kMaxWatts = 2000;           // above any laptop or phone charger
constexpr double kMaxJoulesPerByte = 1e-3;   // ten times a 2000s 3G modem (HSDPA: ~90 uJ per byte)

// A finite number >= 0 followed by one of `units` (suffix, factor); no suffix: factor 1.
Result<double> parse_with_unit(const std::string& text, std::initializer_list<std::pair<const char*, double>> units,
                               const char* example) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  const std::string suffix(end);
  if (end == begin || !std::isfinite(v) || v < 0) {
    return Status::Errorf("'{}' is not a number >= 0 (e.g. {})", text, example);
  }
  if (suffix.empty()) return v;
  for (const auto& [name, factor] : units) {
    if (suffix == name) return v * factor;
  }
  return Status::Errorf("'{}': unknown unit '{}' (e.g. {})", text, suffix, example);
}

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

Result<double> parse_watts(const std::string& text) {
  return parse_with_unit(text, {{"W", 1}, {"mW", 1e-3}}, "4W or 500mW");
}

Result<double> parse_joules(const std::string& text) {
  return parse_with_unit(text, {{"J", 1}, {"mJ", 1e-3}, {"uJ", 1e-6}, {"nJ", 1e-9}, {"pJ", 1e-12}}, "40nJ");
}

Result<double> parse_percent(const std::string& text) { return parse_with_unit(text, {{"%", 1}}, "15%"); }

}  // namespace ll
