#pragma once
// Small pieces the project's SVG charts share: text escaping, round axis steps and one palette,
// so a device has the same colour in every chart.
#include <cmath>
#include <iterator>
#include <string>

namespace ll {

inline constexpr const char* kChartColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

inline const char* chart_color(size_t i) { return kChartColors[i % std::size(kChartColors)]; }

// Text for SVG content and attribute values.
inline std::string svg_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A round step (1, 2 or 5 times a power of ten) giving about five ticks over `span` (> 0).
inline double tick_step(double span) {
  const double raw = span / 5, pow10 = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * pow10 >= raw) return m * pow10;
  }
  return 10 * pow10;
}

}  // namespace ll
