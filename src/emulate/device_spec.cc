#include "emulate/device_spec.h"

#include <fmt/format.h>
#include <sched.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace ll::emulate {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Result<double> parse_number(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v) || v < 0) {
    return Status::Errorf("{}: '{}' is not a non-negative number", what, s);
  }
  return v;
}

}  // namespace

Result<uint64_t> parse_byte_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  LL_ASSIGN_OR_RETURN(double v, parse_number(text.substr(0, i), "size"));
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  double scale = 1;
  if (unit == "K") scale = 1024.0;
  else if (unit == "M") scale = 1024.0 * 1024;
  else if (unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") return Status::Errorf("size '{}': unknown unit (use K, M, G or T)", text);
  if (v * scale >= 1.8e19) return Status::Errorf("size '{}' is too large", text);
  return static_cast<uint64_t>(v * scale);
}

Result<uint64_t> parse_bit_rate(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Only units that mean bits per second: tc reads a bare number as bytes/s and "mbps" as megabytes/s.
  double scale = 0;
  if (unit == "kbit") scale = 1e3;
  else if (unit == "mbit") scale = 1e6;
  else if (unit == "gbit") scale = 1e9;
  else return Status::Errorf("rate '{}': give bits per second as kbit, mbit or gbit, e.g. 20mbit", text);
  LL_ASSIGN_OR_RETURN(double v, parse_number(text.substr(0, i), fmt::format("rate '{}'", text)));
  const double bps = v * scale;
  if (bps < 1e3 || bps > 1e11) return Status::Errorf("rate '{}': between 1kbit and 100gbit", text);
  return static_cast<uint64_t>(std::llround(bps));
}

namespace {

// "2" or "0-1": one core or a range of them, each one this process may run on.
Result<std::vector<int>> parse_cores(const std::string& text, const std::string& device) {
  const size_t dash = text.find('-');
  LL_ASSIGN_OR_RETURN(double first, parse_number(text.substr(0, dash), "device " + device + " cores"));
  double last = first;
  if (dash != std::string::npos) {
    LL_ASSIGN_OR_RETURN(last, parse_number(text.substr(dash + 1), "device " + device + " cores"));
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

}  // namespace

Result<std::vector<DeviceSpec>> parse_devices(const std::string& text) {
  std::vector<DeviceSpec> out;
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::atoi(text.c_str());
    if (n < 1 || n > 64) return Status::Errorf("--devices {}: between 1 and 64 devices", text);
    for (int i = 0; i < n; ++i) out.push_back({.name = fmt::format("dev{}", i + 1)});
    return out;
  }
  std::set<std::string> names;
  for (const std::string& item : split(text, ';')) {
    DeviceSpec d;
    const size_t colon = item.find(':');
    d.name = item.substr(0, colon);
    if (d.name.empty() || d.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
                              std::string::npos) {
      return Status::Errorf("device '{}': a name of letters, digits, '-' and '_' comes first", item);
    }
    if (!names.insert(d.name).second) return Status::Errorf("device name '{}' is used twice", d.name);
    if (colon != std::string::npos) {
      for (const std::string& kv : split(item.substr(colon + 1), ',')) {
        const size_t eq = kv.find('=');
        const std::string key = kv.substr(0, eq), value = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if (key == "cpu") {
          LL_ASSIGN_OR_RETURN(d.cpu, parse_number(value, "device " + d.name + " cpu"));
          if (d.cpu <= 0) return Status::Errorf("device {}: cpu must be above 0", d.name);
        } else if (key == "mem") {
          LL_ASSIGN_OR_RETURN(d.memory, parse_byte_size(value));
        } else if (key == "threads") {
          LL_ASSIGN_OR_RETURN(double t, parse_number(value, "device " + d.name + " threads"));
          if (t < 1 || t > 256 || t != std::floor(t)) return Status::Errorf("device {}: threads 1..256", d.name);
          d.threads = static_cast<int>(t);
        } else if (key == "bw") {
          auto rate = parse_bit_rate(value);
          if (!rate.ok()) return Status::Errorf("device {}: bw: {}", d.name, rate.error());
          d.link_bps = rate.value();
        } else if (key == "cores") {
          LL_ASSIGN_OR_RETURN(d.cores, parse_cores(value, d.name));
        } else {
          return Status::Errorf("device {}: unknown setting '{}' (cpu, mem, threads, bw, cores)", d.name, kv);
        }
      }
    }
    out.push_back(d);
  }
  if (out.empty()) return Status::Error("no devices described");
  return out;
}

}  // namespace ll::emulate
