// The pipeline of a plan as an SVG picture: one lane per device, one token's trip through
// the ring from left to right.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/svg_text.h"
#include "plan/plan.h"

namespace ll::plan {
namespace {

constexpr double kLabelWidth = 190, kPlotWidth = 760, kLaneHeight = 56, kTop = 58, kBarHeight = 26;

}  // namespace

Status write_svg(const Plan& p, const std::string& path) {
  const double lanes = static_cast<double>(p.devices.size());
  const double height = kTop + lanes * kLaneHeight + 50, width = kLabelWidth + kPlotWidth + 30;
  const double total_ms = std::max(p.latency_seconds * 1e3, 1e-6);
  auto x_of = [&](double ms) { return kLabelWidth + kPlotWidth * ms / total_ms; };
  auto lane_mid = [&](int d) { return kTop + (d + 0.5) * kLaneHeight; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"8\" refX=\"7\" refY=\"4\" "
      "orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#333\"/></marker></defs>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width, height);
  svg += fmt::format(
      "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{} plan, {} objective: {:.3f} ms per token "
      "through the ring = {:.2f} tokens/s</text>\n",
      svg_escape(p.planner), objective_name(p.objective), p.latency_seconds * 1e3, p.tokens_per_second);
  svg += fmt::format(
      "<text x=\"10\" y=\"42\" fill=\"#555\">slowest stage {:.3f} ms: {:.2f} tokens/s with {} sequence(s) in "
      "flight; context {}; bars: compute, arrows: transfers</text>\n",
      p.bottleneck_seconds * 1e3, p.pipelined_tokens_per_second, p.n_parallel, p.n_ctx);

  for (size_t d = 0; d < p.devices.size(); ++d) {
    const auto& a = p.devices[d];
    const double y = kTop + d * kLaneHeight;
    svg += fmt::format("<rect x=\"0\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"{}\"/>\n", y, width,
                       kLaneHeight, d % 2 ? "#f7f7f7" : "#ffffff");
    svg += fmt::format("<text x=\"10\" y=\"{:.1f}\" font-weight=\"bold\">{}</text>\n", y + 22, svg_escape(a.name));
    svg += fmt::format("<text x=\"10\" y=\"{:.1f}\" fill=\"#555\">{:.0f} / {:.0f} MiB</text>\n", y + 40,
                       a.memory_bytes / 1048576.0, a.memory_limit_bytes / 1048576.0);
    if (a.units.empty()) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#999\">holds nothing</text>\n", kLabelWidth,
                         lane_mid(static_cast<int>(d)) + 4);
    }
  }

  // One token's trip: each segment computes, then sends on (the last sends the token back).
  double t = 0;
  for (int d : p.used_devices()) {
    const auto& a = p.devices[d];
    const double c = a.compute_seconds * 1e3, x0 = x_of(t), x1 = x_of(t + c), y = lane_mid(d);
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.0f}\" rx=\"3\" fill=\"{}\"><title>{}: units "
        "{}..{} ({}), {:.3f} ms</title></rect>\n",
        x0, y - kBarHeight / 2, std::max(x1 - x0, 1.0), kBarHeight, chart_color(d), svg_escape(a.name),
        a.units.begin, a.units.end - 1, svg_escape(a.span()), c);
    // The label goes inside the bar when it fits there (about 6.5 px per character), else above.
    const std::string label = fmt::format("{}  {:.2f} ms", a.span(), c);
    if (x1 - x0 > 6.5 * static_cast<double>(label.size()) + 8) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"white\">{}</text>\n", x0 + 4, y + 4,
                         svg_escape(label));
    } else {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#222\">{}</text>\n", x0 + 3, y - kBarHeight / 2 - 3,
                         svg_escape(label));
    }
    t += c;
    if (a.send_to.empty()) continue;
    int to = d;
    for (size_t e = 0; e < p.devices.size(); ++e) {
      if (p.devices[e].name == a.send_to) to = static_cast<int>(e);
    }
    const double tr = a.transfer_seconds * 1e3;
    const double ya = y + (to > d ? kBarHeight / 2 : -kBarHeight / 2);
    const double yb = lane_mid(to) + (to > d ? -kBarHeight / 2 : kBarHeight / 2);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\" stroke-width=\"1.5\" "
        "marker-end=\"url(#arrow)\"><title>{} B/token to {}: {:.3f} ms</title></line>\n",
        x_of(t), ya, x_of(t + tr), yb, a.send_bytes, svg_escape(a.send_to), tr);
    // Forward transfers are labelled right of their arrow, the return left of it.
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#333\" font-size=\"10\" text-anchor=\"{}\">{:.3f} ms</text>\n",
        x_of(t + tr / 2) + (to > d ? 4 : -4), (ya + yb) / 2 + 3, to > d ? "start" : "end", tr);
    t += tr;
  }

  // Time axis.
  const double axis_y = kTop + lanes * kLaneHeight + 12;
  svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", kLabelWidth,
                     axis_y, kLabelWidth + kPlotWidth, axis_y);
  const double step = tick_step(total_ms);
  for (double ms = 0; ms <= total_ms * (1 + 1e-9); ms += step) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/><text x=\"{0:.1f}\" "
        "y=\"{3:.1f}\" text-anchor=\"middle\" font-size=\"10\">{4:g} ms</text>\n",
        x_of(ms), axis_y, axis_y + 5, axis_y + 18, ms);
  }
  svg += "</svg>\n";

  std::ofstream out(path);
  out << svg;
  if (!out) return Status::Errorf("cannot write {}", path);
  return Status::Ok();
}

}  // namespace ll::plan
