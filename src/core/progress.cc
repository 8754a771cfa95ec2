#include "core/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ll {
namespace {

std::string amount(double v, ProgressUnit unit) {
  if (unit == ProgressUnit::items) return fmt::format("{:.0f}", v);
  if (v >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", v / (1024.0 * 1024 * 1024));
  return fmt::format("{:.1f} MiB", v / (1024.0 * 1024));
}

std::string duration(double seconds) {
  const auto s = static_cast<long long>(std::ceil(seconds));
  if (s < 60) return fmt::format("{} s", s);
  if (s < 3600) return fmt::format("{}:{:02d} min", s / 60, static_cast<int>(s % 60));
  return fmt::format("{}:{:02d} h", s / 3600, static_cast<int>(s % 3600 / 60));
}

}  // namespace

std::string render_progress(const Progress& p, double elapsed_seconds, size_t bar_width) {
  const uint64_t done = std::min(p.done, p.total);
  const double fraction = p.total > 0 ? static_cast<double>(done) / static_cast<double>(p.total) : 1.0;
  std::string line = p.what + "  ";
  if (p.unit == ProgressUnit::bytes) {
    line +=
        fmt::format("{}/{}", amount(static_cast<double>(done), p.unit), amount(static_cast<double>(p.total), p.unit));
  } else {
    line += fmt::format("{}/{}", done, p.total);
  }
  if (bar_width > 0) {
    const auto filled = static_cast<size_t>(fraction * static_cast<double>(bar_width));
    std::string bar(bar_width, ' ');
    std::fill_n(bar.begin(), filled, '=');
    if (filled < bar_width && filled > 0) bar[filled - 1] = '>';
    line += " [" + bar + "]";
  }
  line += fmt::format(" {:3.0f}%", fraction * 100.0);
  // A rate needs a moment of history to mean anything.
  if (elapsed_seconds >= 0.5 && done > 0) {
    const double rate = static_cast<double>(done) / elapsed_seconds;
    line +=
        p.unit == ProgressUnit::bytes ? fmt::format("  {}/s", amount(rate, p.unit)) : fmt::format("  {:.2f}/s", rate);
    if (done < p.total) line += "  " + duration(static_cast<double>(p.total - done) / rate) + " left";
  }
  if (done >= p.total) line += fmt::format("  done in {}", duration(elapsed_seconds));
  return line;
}

}  // namespace ll
