#include "core/device_list.h"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "core/device_presets.h"
#include "core/quantity.h"

namespace ll {
namespace {

constexpr std::pair<DeviceSetting, const char*> kSettingNames[] = {
    {DeviceSetting::Cpu, "cpu"},         {DeviceSetting::Speed, "speed"}, {DeviceSetting::Mem, "mem"},
    {DeviceSetting::Threads, "threads"}, {DeviceSetting::Bw, "bw"},       {DeviceSetting::Cores, "cores"},
    {DeviceSetting::Busy, "busy"},       {DeviceSetting::Fail, "fail"},   {DeviceSetting::Host, "host"},
    {DeviceSetting::Preset, "preset"},   {DeviceSetting::Power, "power"}, {DeviceSetting::Idle, "idle"},
    {DeviceSetting::Radio, "radio"},     {DeviceSetting::Battery, "battery"}};

// Shares below 0.01 core would need a CFS period beyond the kernel's 1 s; above 256 is no device.
constexpr double kMinCpuShare = 0.01, kMaxCpuShare = 256;
constexpr int kMaxBusyProcesses = 64;
constexpr double kMaxScheduleSeconds = 86400;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// "2" or "0-1": one core or a range of them, each one this process may run on.
Result<std::vector<int>> parse_cores(const std::string& text, const std::string& device) {
  const size_t dash = text.find('-');
  LL_ASSIGN_OR_RETURN(double first, parse_non_negative(text.substr(0, dash), "device " + device + " cores"));
  double last = first;
  if (dash != std::string::npos) {
    LL_ASSIGN_OR_RETURN(last, parse_non_negative(text.substr(dash + 1), "device " + device + " cores"));
  }
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_ZERO(&allowed);
  if (first < 0 || last < first || last >= CPU_SETSIZE || first != std::floor(first) || last != std::floor(last)) {
    return Status::Errorf("device {}: cores '{}': give a core number or a range such as 0-1", device, text);
  }
  std::vector<int> cores;
  for (int c = static_cast<int>(first); c <= static_cast<int>(last); ++c) {
    if (!CPU_ISSET(c, &allowed)) return Status::Errorf("device {}: core {} is not one this machine lets us use", device, c);
    cores.push_back(c);
  }
  return cores;
}

Result<double> parse_positive(const std::string& value, const std::string& device, const std::string& key) {
  LL_ASSIGN_OR_RETURN(double v, parse_non_negative(value, "device " + device + " " + key));
  if (v <= 0) return Status::Errorf("device {}: {} must be above 0", device, key);
  return v;
}

Result<double> parse_schedule_time(const std::string& text, const std::string& what) {
  auto seconds = parse_duration(text);
  if (!seconds.ok()) return Status::Errorf("{}: {}", what, seconds.error());
  if (seconds.value() > kMaxScheduleSeconds) return Status::Errorf("{}: {} is more than a day", what, text);
  return seconds.value();
}

// "0.5@0s/0.15@3s": each value from its time on, the times strictly increasing.
Result<std::vector<TimedValue>> parse_schedule(const std::string& text, const std::string& device,
                                               const std::string& key) {
  const std::string what = fmt::format("device {}: {} schedule '{}'", device, key, text);
  std::vector<TimedValue> out;
  std::string previous_time;
  for (size_t start = 0;;) {
    const size_t slash = text.find('/', start);
    const std::string entry = text.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    const size_t at = entry.find('@');
    if (at == std::string::npos || entry.find('@', at + 1) != std::string::npos) {
      return Status::Errorf("{}: '{}' is not VALUE@TIME (e.g. {}={})", what, entry, key,
                            key == "cpu" ? "0.5@0s/0.15@3s" : "1@3s/0@20s");
    }
    LL_ASSIGN_OR_RETURN(const double value, parse_non_negative(entry.substr(0, at), what));
    const std::string time = entry.substr(at + 1);
    LL_ASSIGN_OR_RETURN(const double seconds, parse_schedule_time(time, what));
    if (!out.empty() && seconds <= out.back().seconds) {
      return Status::Errorf("{}: times must increase, but {} follows {}", what, time, previous_time);
    }
    out.push_back({.seconds = seconds, .value = value});
    previous_time = time;
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

Status check_cpu_share(double share, const std::string& device) {
  if (share < kMinCpuShare || share > kMaxCpuShare) {
    return Status::Errorf("device {}: cpu share {:g} is not between {:g} and {:g} cores", device, share, kMinCpuShare,
                          kMaxCpuShare);
  }
  return Status::Ok();
}

Status apply_cpu(DeviceDescription& d, const std::string& value) {
  if (value.find('@') == std::string::npos) {
    LL_ASSIGN_OR_RETURN(d.cpu, parse_positive(value, d.name, "cpu"));
    d.cpu_schedule.clear();
    return check_cpu_share(*d.cpu, d.name);
  }
  LL_ASSIGN_OR_RETURN(d.cpu_schedule, parse_schedule(value, d.name, "cpu"));
  for (const TimedValue& step : d.cpu_schedule) LL_RETURN_IF_ERROR(check_cpu_share(step.value, d.name));
  if (d.cpu_schedule.front().seconds != 0) {
    return Status::Errorf("device {}: cpu schedule '{}': its first share is the one it starts with, so it is at 0s "
                          "(e.g. cpu=0.5@0s/0.15@3s)",
                          d.name, value);
  }
  d.cpu = d.cpu_schedule.front().value;
  return Status::Ok();
}

Status apply_busy(DeviceDescription& d, const std::string& value) {
  LL_ASSIGN_OR_RETURN(d.busy_schedule, parse_schedule(value, d.name, "busy"));
  for (const TimedValue& step : d.busy_schedule) {
    if (step.value != std::floor(step.value) || step.value > kMaxBusyProcesses) {
      return Status::Errorf("device {}: busy schedule '{}': {:g} is not a number of processes from 0 to {}", d.name,
                            value, step.value, kMaxBusyProcesses);
    }
  }
  return Status::Ok();
}

Result<FaultKind> parse_fault_kind(const std::string& word, const std::string& what, const std::string& step) {
  if (word == "kill") return FaultKind::Kill;
  if (word == "stop") return FaultKind::Stop;
  if (word == "restart") return FaultKind::Restart;
  if (word == "drop") return FaultKind::Drop;
  return Status::Errorf("{}: '{}' is not a fault: kill, stop, restart or drop (e.g. fail=kill@5s,restart@12s)", what,
                        step);
}

// Where each fault may come, given the ones before: the worker is running, frozen or killed,
// and its link up or cut, at the time of each step.
Status check_fault_order(const std::vector<FaultStep>& steps, const std::vector<std::string>& texts,
                         const std::string& what) {
  constexpr double kForGood = 1e300;
  // The step that killed, froze or cut, and until when a freeze or cut lasts.
  std::string killed_by, frozen_by, cut_by;
  double frozen_until = 0, cut_until = 0;
  for (size_t k = 0; k < steps.size(); ++k) {
    const FaultStep& s = steps[k];
    const std::string& text = texts[k];
    const bool frozen = !frozen_by.empty() && s.seconds < frozen_until;
    switch (s.kind) {
      case FaultKind::Kill:
      case FaultKind::Stop:
        if (!killed_by.empty()) {
          return Status::Errorf("{}: '{}' comes while the worker is killed (by {}): restart it first", what, text,
                                killed_by);
        }
        if (frozen) {
          return Status::Errorf("{}: '{}' comes while the worker is frozen (by {}): give it after the freeze ends",
                                what, text, frozen_by);
        }
        if (s.kind == FaultKind::Kill) {
          killed_by = text;
        } else {
          frozen_by = text;
          frozen_until = s.duration > 0 ? s.seconds + s.duration : kForGood;
        }
        break;
      case FaultKind::Restart:
        if (killed_by.empty()) {
          return Status::Errorf("{}: '{}' restarts a worker that is not killed: a restart follows a kill (e.g. "
                                "fail=kill@5s,restart@12s)",
                                what, text);
        }
        killed_by.clear();
        break;
      case FaultKind::Drop:
        if (!cut_by.empty() && s.seconds < cut_until) {
          return Status::Errorf("{}: '{}' comes while the link is cut (by {}): give it after the link is back", what,
                                text, cut_by);
        }
        cut_by = text;
        cut_until = s.duration > 0 ? s.seconds + s.duration : kForGood;
        break;
    }
  }
  return Status::Ok();
}

// "kill@5s,restart@12s", "stop@5s+3s", "drop@5s": each fault at its time (stop and drop for a
// while or for good), the times strictly increasing.
Status apply_fail(DeviceDescription& d, const std::string& value) {
  const std::string what = fmt::format("device {}: fail schedule '{}'", d.name, value);
  std::vector<FaultStep> steps;
  std::vector<std::string> texts;
  for (size_t start = 0;;) {
    const size_t sep = value.find_first_of(",/", start);
    const std::string text = value.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    const size_t at = text.find('@');
    if (at == std::string::npos || text.find('@', at + 1) != std::string::npos) {
      return Status::Errorf("{}: '{}' is not FAULT@TIME (e.g. fail=kill@5s,restart@12s or fail=stop@5s+3s)", what,
                            text);
    }
    FaultStep step;
    LL_ASSIGN_OR_RETURN(step.kind, parse_fault_kind(text.substr(0, at), what, text));
    const size_t plus = text.find('+', at);
    const std::string time = text.substr(at + 1, plus == std::string::npos ? std::string::npos : plus - at - 1);
    LL_ASSIGN_OR_RETURN(step.seconds, parse_schedule_time(time, what));
    if (plus != std::string::npos) {
      if (step.kind == FaultKind::Kill || step.kind == FaultKind::Restart) {
        return Status::Errorf("{}: '{}': only stop and drop last a while (+DURATION)", what, text);
      }
      const std::string duration = text.substr(plus + 1);
      LL_ASSIGN_OR_RETURN(step.duration, parse_schedule_time(duration, what));
      if (step.duration <= 0) {
        return Status::Errorf("{}: '{}': the duration must be above 0 (leave out +DURATION for good)", what, text);
      }
    }
    if (!steps.empty() && step.seconds <= steps.back().seconds) {
      return Status::Errorf("{}: times must increase, but {} follows {}", what, text, texts.back());
    }
    steps.push_back(step);
    texts.push_back(text);
    if (sep == std::string::npos) break;
    start = sep + 1;
  }
  LL_RETURN_IF_ERROR(check_fault_order(steps, texts, what));
  d.fail_schedule = std::move(steps);
  return Status::Ok();
}

// The items of one device's settings, split at ','; the fault steps after fail= continue it.
std::vector<std::string> settings_of(const std::string& text) {
  std::vector<std::string> out;
  for (std::string& item : split(text, ',')) {
    if (item.find('=') == std::string::npos && !out.empty() && out.back().starts_with("fail=")) {
      out.back() += "," + item;
    } else {
      out.push_back(std::move(item));
    }
  }
  return out;
}

// One energy figure; power=, idle= and radio= are completed and checked together by finish_energy.
Status apply_energy(std::optional<double>& out, Result<double> parsed, const std::string& device, const char* key) {
  if (!parsed.ok()) return Status::Errorf("device {}: {}: {}", device, key, parsed.error());
  out = parsed.value();
  return Status::Ok();
}

// The preset's cpu, mem, bw and energy figures, before the settings given beside it.
Status apply_preset(DeviceDescription& d, const std::string& name) {
  const DevicePreset* p = find_device_preset(name);
  if (p == nullptr) return Status::Errorf("device {}: unknown preset '{}' ({})", d.name, name, device_preset_names());
  d.preset = p->name;
  d.cpu = p->cpu;
  d.memory = p->memory;
  d.link_bps = p->link_bps;
  d.energy = p->energy;
  return Status::Ok();
}

// Power, idle and radio given in this item, over the preset's: all three known, or none.
struct EnergySettings {
  std::optional<double> compute_watts, idle_watts, radio_joules_per_byte;
};

Status finish_energy(DeviceDescription& d, const EnergySettings& given) {
  if (!given.compute_watts && !given.idle_watts && !given.radio_joules_per_byte) return Status::Ok();
  if (!d.energy && !(given.compute_watts && given.idle_watts && given.radio_joules_per_byte)) {
    return Status::Errorf("device {}: give power=, idle= and radio= together (or a preset for the others)", d.name);
  }
  EnergyFigures e = d.energy.value_or(EnergyFigures{});
  e.compute_watts = given.compute_watts.value_or(e.compute_watts);
  e.idle_watts = given.idle_watts.value_or(e.idle_watts);
  e.radio_joules_per_byte = given.radio_joules_per_byte.value_or(e.radio_joules_per_byte);
  LL_RETURN_IF_ERROR(check_energy_figures(e, d.name));
  d.energy = e;
  return Status::Ok();
}

Status apply_setting(DeviceDescription& d, DeviceSetting setting, const std::string& value, EnergySettings& energy) {
  switch (setting) {
    case DeviceSetting::Preset:
      return Status::Ok();  // applied before the other settings
    case DeviceSetting::Power:
      return apply_energy(energy.compute_watts, parse_watts(value), d.name, "power");
    case DeviceSetting::Idle:
      return apply_energy(energy.idle_watts, parse_watts(value), d.name, "idle");
    case DeviceSetting::Radio:
      return apply_energy(energy.radio_joules_per_byte, parse_joules(value), d.name, "radio");
    case DeviceSetting::Battery: {
      auto percent = parse_percent(value);
      if (!percent.ok()) return Status::Errorf("device {}: battery: {}", d.name, percent.error());
      LL_RETURN_IF_ERROR(check_battery_percent(percent.value(), d.name));
      d.battery_percent = percent.value();
      return Status::Ok();
    }
    case DeviceSetting::Cpu:
      return apply_cpu(d, value);
    case DeviceSetting::Fail:
      return apply_fail(d, value);
    case DeviceSetting::Busy:
      return apply_busy(d, value);
    case DeviceSetting::Speed: {
      LL_ASSIGN_OR_RETURN(d.speed, parse_positive(value, d.name, "speed"));
      break;
    }
    case DeviceSetting::Mem: {
      LL_ASSIGN_OR_RETURN(d.memory, parse_byte_size(value));
      break;
    }
    case DeviceSetting::Threads: {
      LL_ASSIGN_OR_RETURN(double t, parse_non_negative(value, "device " + d.name + " threads"));
      if (t < 1 || t > 256 || t != std::floor(t)) return Status::Errorf("device {}: threads 1..256", d.name);
      d.threads = static_cast<int>(t);
      break;
    }
    case DeviceSetting::Bw: {
      auto rate = parse_bit_rate(value);
      if (!rate.ok()) return Status::Errorf("device {}: bw: {}", d.name, rate.error());
      d.link_bps = rate.value();
      break;
    }
    case DeviceSetting::Cores: {
      LL_ASSIGN_OR_RETURN(d.cores, parse_cores(value, d.name));
      break;
    }
    case DeviceSetting::Host: {
      const bool valid = !value.empty() && value.size() <= 63 && value.front() != '-' &&
                         value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") ==
                             std::string::npos;
      if (!valid) {
        return Status::Errorf("device {}: host '{}' is not a host name (letters, digits and '-', at most 63)", d.name,
                              value);
      }
      d.host = value;
      break;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<DeviceDescription>> parse_device_list(const std::string& text,
                                                         std::initializer_list<DeviceSetting> honoured) {
  std::vector<DeviceDescription> out;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::atoi(text.c_str());
    if (n < 1 || n > 64) return Status::Errorf("--devices {}: between 1 and 64 devices", text);
    for (int i = 0; i < n; ++i) out.push_back({.name = fmt::format("dev{}", i + 1)});
    return out;
  }
  std::vector<std::string> honoured_names;
  for (const auto& [setting, name] : kSettingNames) {
    if (std::find(honoured.begin(), honoured.end(), setting) != honoured.end()) honoured_names.push_back(name);
  }
  const std::string usable = fmt::format("{}", fmt::join(honoured_names, ", "));
  std::set<std::string> names;
  for (const std::string& item : split(text, ';')) {
    DeviceDescription d;
    const size_t colon = item.find(':');
    d.name = item.substr(0, colon);
    if (d.name.empty() || d.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
                              std::string::npos) {
      return Status::Errorf("device '{}': a name of letters, digits, '-' and '_' comes first", item);
    }
    if (!names.insert(d.name).second) return Status::Errorf("device name '{}' is used twice", d.name);
    const std::vector<std::string> settings =
        colon == std::string::npos ? std::vector<std::string>{} : settings_of(item.substr(colon + 1));
    if (std::find(honoured.begin(), honoured.end(), DeviceSetting::Preset) != honoured.end()) {
      const auto given = std::find_if(settings.begin(), settings.end(),
                                      [](const std::string& kv) { return kv.starts_with("preset="); });
      if (given != settings.end()) {
        LL_RETURN_IF_ERROR(apply_preset(d, given->substr(7)));
      } else if (find_device_preset(d.name) != nullptr) {
        LL_RETURN_IF_ERROR(apply_preset(d, d.name));
      }
    }
    EnergySettings energy;
    for (const std::string& kv : settings) {
      const size_t eq = kv.find('=');
      const std::string key = kv.substr(0, eq), value = eq == std::string::npos ? "" : kv.substr(eq + 1);
      const auto* known = std::find_if(std::begin(kSettingNames), std::end(kSettingNames),
                                       [&](const auto& s) { return key == s.second; });
      if (known == std::end(kSettingNames)) {
        return Status::Errorf("device {}: unknown setting '{}' ({})", d.name, kv, usable);
      }
      if (std::find(honoured.begin(), honoured.end(), known->first) == honoured.end()) {
        return Status::Errorf("device {}: this command cannot use {}= (it uses {})", d.name, key, usable);
      }
      LL_RETURN_IF_ERROR(apply_setting(d, known->first, value, energy));
    }
    LL_RETURN_IF_ERROR(finish_energy(d, energy));
    out.push_back(std::move(d));
  }
  if (out.empty()) return Status::Error("no devices described");
  return out;
}

}  // namespace ll
