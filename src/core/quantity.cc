#include "core/quantity.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <utility>

namespace ll {
namespace {

// The digits and points that begin `text`: the number before a unit.
size_t number_length(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  return i;
}

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

Result<double> parse_non_negative(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0) {
    return Status::Errorf("{}: '{}' is not a non-negative number", what, text);
  }
  return v;
}

Result<uint64_t> parse_byte_size(const std::string& text) {
  const size_t i = number_length(text);
  LL_ASSIGN_OR_RETURN(double v, parse_non_negative(text.substr(0, i), "size"));
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
  const size_t i = number_length(text);
  std::string unit = text.substr(i);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // Only units that mean bits per second: tc reads a bare number as bytes/s and "mbps" as megabytes/s.
  double scale = 0;
  if (unit == "kbit") scale = 1e3;
  else if (unit == "mbit") scale = 1e6;
  else if (unit == "gbit") scale = 1e9;
  else return Status::Errorf("rate '{}': give bits per second as kbit, mbit or gbit, e.g. 20mbit", text);
  LL_ASSIGN_OR_RETURN(double v, parse_non_negative(text.substr(0, i), fmt::format("rate '{}'", text)));
  const double bps = v * scale;
  if (bps < 1e3 || bps > 1e11) return Status::Errorf("rate '{}': between 1kbit and 100gbit", text);
  return static_cast<uint64_t>(std::llround(bps));
}

Result<double> parse_byte_rate(const std::string& text) {
  LL_ASSIGN_OR_RETURN(const double rate, parse_with_unit(text,
                                                         {{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B/s", 1}, {"KB/s", 1e3},
                                                          {"MB/s", 1e6}, {"GB/s", 1e9}},
                                                         "125M bytes per second"));
  if (rate == 0) return Status::Errorf("'{}': a rate in bytes per second must be above 0 (e.g. 125M)", text);
  return rate;
}

Result<double> parse_duration(const std::string& text) {
  return parse_with_unit(text, {{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}}, "0.5ms");
}

Result<double> parse_watts(const std::string& text) {
  return parse_with_unit(text, {{"W", 1}, {"mW", 1e-3}}, "4W or 500mW");
}

Result<double> parse_joules(const std::string& text) {
  return parse_with_unit(text, {{"J", 1}, {"mJ", 1e-3}, {"uJ", 1e-6}, {"nJ", 1e-9}, {"pJ", 1e-12}}, "40nJ");
}

Result<double> parse_percent(const std::string& text) { return parse_with_unit(text, {{"%", 1}}, "15%"); }

}  // namespace ll
