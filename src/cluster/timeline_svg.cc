// The timeline chart: tokens/s over time above each worker's compute time per token, with the
// rebalances and speed changes drawn across both.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "cluster/timeline.h"
#include "core/svg_text.h"

namespace ll::cluster {
namespace {

constexpr double kWidth = 1000, kLeft = 72, kRight = 24, kPlotWidth = kWidth - kLeft - kRight;
constexpr double kBandTop = 54, kRowHeight = 15, kRatePanelHeight = 160, kPanelGap = 18, kComputePanelHeight = 200;
constexpr double kCharWidth = 6.3;  // about, at the labels' font size 11
constexpr const char *kRateColor = "#6b7f95", *kRebalanceColor = "#222", *kAbortedColor = "#999",
                     *kMarkColor = "#7f3c8d", *kRecoveryColor = "#c0392b", *kRejoinColor = "#2e8b57";
constexpr const char *kDashed = " stroke-dasharray=\"5,4\"", *kDotted = " stroke-dasharray=\"2,3\"";
struct LineKind {
  const char *color, *dash, *name;
};
constexpr LineKind kLineKinds[] = {{kRebalanceColor, "", "rebalance"},
                                   {kAbortedColor, kDashed, "rebalance given up"},
                                   {kRecoveryColor, "", "recovery"},
                                   {kRejoinColor, kDotted, "rejoin"},
                                   {kMarkColor, kDashed, "speed change or fault"}};
constexpr size_t kLegendColumns = 6;

std::string ms_text(double seconds) {
  const double ms = seconds * 1e3;
  return ms < 10 ? fmt::format("{:.1f} ms", ms) : fmt::format("{:.0f} ms", ms);
}

// A vertical line across both panels with its label in the band above them.
struct Marker {
  double seconds = 0;
  std::string label, title, color;
  bool dashed = false;
  bool dotted = false;
  int row = 0;
  bool label_left = false;  // the label ends at the line (near the right edge)
};

// Rows of the label band so that no two labels overlap: each label takes the first row where it
// fits after the labels already there.
int place_labels(std::vector<Marker>& markers, const auto& x_of) {
  std::sort(markers.begin(), markers.end(), [](const Marker& a, const Marker& b) { return a.seconds < b.seconds; });
  std::vector<double> row_end;
  for (auto& m : markers) {
    const double x = x_of(m.seconds), w = kCharWidth * static_cast<double>(m.label.size()) + 6;
    m.label_left = x + w > kWidth - 4;
    const double begin = m.label_left ? x - w : x, end = m.label_left ? x : x + w;
    size_t row = 0;
    while (row < row_end.size() && begin < row_end[row] + 4) ++row;
    if (row == row_end.size()) row_end.push_back(0);
    row_end[row] = end;
    m.row = static_cast<int>(row);
  }
  return std::max<int>(1, static_cast<int>(row_end.size()));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Per worker and rate bin: the median over the bin's tokens of the worker's compute seconds for
// a token (its stages summed); negative where the worker computed nothing in the bin.
std::vector<std::vector<double>> compute_medians(const RunTrace& trace, const std::vector<RateBin>& bins) {
  size_t n_workers = trace.worker_names.size();
  for (const auto& t : trace.tokens) {
    for (const auto& s : t.stages) n_workers = std::max(n_workers, s.worker + 1);
  }
  std::vector<std::vector<std::vector<double>>> samples(n_workers, std::vector<std::vector<double>>(bins.size()));
  for (const auto& t : trace.tokens) {
    size_t b = 0;
    while (b + 1 < bins.size() && t.seconds >= bins[b].end_seconds) ++b;
    std::vector<double> per_worker(n_workers, -1);
    for (const auto& s : t.stages) per_worker[s.worker] = std::max(per_worker[s.worker], 0.0) + s.compute_seconds;
    for (size_t w = 0; w < n_workers; ++w) {
      if (per_worker[w] >= 0) samples[w][b].push_back(per_worker[w]);
    }
  }
  std::vector<std::vector<double>> medians(n_workers, std::vector<double>(bins.size(), -1));
  for (size_t w = 0; w < n_workers; ++w) {
    for (size_t b = 0; b < bins.size(); ++b) {
      if (!samples[w][b].empty()) medians[w][b] = median(samples[w][b]);
    }
  }
  return medians;
}

std::string worker_name(const RunTrace& trace, size_t w) {
  return w < trace.worker_names.size() ? trace.worker_names[w] : fmt::format("worker {}", w);
}

std::string ranges_text(const RunTrace& trace, const std::vector<model::UnitRange>& ranges) {
  std::string out;
  for (size_t w = 0; w < ranges.size(); ++w) {
    if (!out.empty()) out += ", ";
    out += ranges[w].empty() ? fmt::format("{} nothing", worker_name(trace, w))
                             : fmt::format("{} {}..{}", worker_name(trace, w), ranges[w].begin, ranges[w].end - 1);
  }
  return out;
}

std::vector<Marker> markers_of(const RunTrace& trace) {
  std::vector<Marker> markers;
  for (const auto& r : trace.rebalances) {
    Marker m;
    m.seconds = r.switched_seconds;
    m.dashed = r.aborted;
    m.color = r.aborted ? kAbortedColor : kRebalanceColor;
    m.label = r.aborted ? fmt::format("aborted: {}", r.summary)
                        : fmt::format("{}, stall {}", r.summary, ms_text(r.stall_seconds));
    m.title = fmt::format(
        "{}\ndetected {:.2f} s, decided {:.2f} s, {} {:.2f} s; stall {}; predicted gain {:.0f}%\n"
        "weights {:.1f} MiB, KV {:.1f} MiB\nbefore: {}\nafter: {}\n{}",
        m.label, r.detected_seconds, r.decided_seconds, r.aborted ? "given up" : "switched", r.switched_seconds,
        ms_text(r.stall_seconds), r.predicted_gain * 100, r.weight_bytes / 1048576.0, r.kv_bytes / 1048576.0,
        ranges_text(trace, r.before), ranges_text(trace, r.after), r.why);
    markers.push_back(std::move(m));
  }
  for (const auto& r : trace.recoveries) {
    Marker m;
    m.seconds = r.failed ? r.detected_seconds : r.resumed_seconds;
    m.dashed = r.failed;
    m.color = kRecoveryColor;
    m.label = r.failed ? fmt::format("{} lost: failed", worker_name(trace, r.worker))
                       : fmt::format("{} lost: resumed in {}", worker_name(trace, r.worker),
                                     ms_text(r.resumed_seconds - r.detected_seconds));
    m.title = fmt::format(
        "{}\n{}\nlast heard {:.2f} s, detected {:.2f} s, planned {:.2f} s, loaded {:.2f} s, resumed {:.2f} s\n"
        "{} sequence(s), {} token(s) replayed\nbefore: {}\nafter: {}\n{}",
        m.label, r.why, r.last_heard_seconds, r.detected_seconds, r.planned_seconds, r.loaded_seconds,
        r.resumed_seconds, r.sequences, r.replayed_tokens, ranges_text(trace, r.before), ranges_text(trace, r.after),
        r.failed ? r.error : r.summary);
    markers.push_back(std::move(m));
  }
  for (const auto& r : trace.rejoins) {
    markers.push_back({.seconds = r.seconds,
                       .label = fmt::format("{} rejoined", worker_name(trace, r.worker)),
                       .title = fmt::format("{:.2f} s: {} rejoined", r.seconds, worker_name(trace, r.worker)),
                       .color = kRejoinColor,
                       .dotted = true});
  }
  for (const auto& k : trace.marks) {
    markers.push_back({.seconds = k.seconds,
                       .label = k.label,
                       .title = fmt::format("{:.2f} s: {}", k.seconds, k.label),
                       .color = kMarkColor,
                       .dashed = true});
  }
  return markers;
}

// Horizontal grid lines and labels of a panel's value axis.
std::string value_axis(double top, double height, double max_value, const std::string& name) {
  std::string svg;
  const double step = tick_step(max_value);
  for (double v = 0; v <= max_value * (1 + 1e-9); v += step) {
    const double y = top + height - height * v / max_value;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#e4e4e4\"/><text x=\"{3:.1f}\" "
        "y=\"{4:.1f}\" text-anchor=\"end\" font-size=\"10\">{5:g}</text>\n",
        kLeft, y, kLeft + kPlotWidth, kLeft - 5, y + 3, v);
  }
  svg += fmt::format(
      "<text x=\"14\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {0:.1f})\" "
      "fill=\"#333\">{1}</text>\n",
      top + height / 2, svg_escape(name));
  svg += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#999\"/>\n", kLeft,
      top, kPlotWidth, height);
  return svg;
}

}  // namespace

std::string timeline_svg(const RunTrace& trace) {
  const auto bins = rate_bins(trace, kTimelineBinSeconds);
  const auto medians = compute_medians(trace, bins);

  double end_seconds = bins.empty() ? 0 : bins.back().end_seconds;
  for (const auto& r : trace.rebalances) end_seconds = std::max(end_seconds, r.switched_seconds);
  for (const auto& m : trace.marks) end_seconds = std::max(end_seconds, m.seconds);
  for (const auto& r : trace.recoveries) end_seconds = std::max(end_seconds, r.resumed_seconds);
  for (const auto& r : trace.rejoins) end_seconds = std::max(end_seconds, r.seconds);
  if (end_seconds <= 0) end_seconds = 1;
  auto x_of = [&](double s) { return kLeft + kPlotWidth * std::clamp(s, 0.0, end_seconds) / end_seconds; };

  auto markers = markers_of(trace);
  const int rows = place_labels(markers, x_of);
  const double rate_top = kBandTop + rows * kRowHeight + 6, rate_bottom = rate_top + kRatePanelHeight;
  const double compute_top = rate_bottom + kPanelGap, compute_bottom = compute_top + kComputePanelHeight;
  const double axis_y = compute_bottom, legend_y = axis_y + 44;
  const size_t n_workers = medians.size();
  const double legend_rows = std::ceil(static_cast<double>(n_workers + std::size(kLineKinds)) / kLegendColumns);
  const double height = legend_y + legend_rows * 18 + 10;

  size_t aborted = 0;
  for (const auto& r : trace.rebalances) aborted += r.aborted;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      kWidth, height);
  size_t n_requests = 0;
  for (const auto& t : trace.tokens) n_requests = std::max(n_requests, t.request + 1);
  svg += fmt::format(
      "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Generation timeline: {} tokens of {} request(s) "
      "in {:.1f} s, {} rebalance(s){}{}</text>\n",
      trace.tokens.size(), n_requests, end_seconds, trace.rebalances.size() - aborted,
      aborted ? fmt::format(" and {} given up", aborted) : "",
      trace.recoveries.empty() ? "" : fmt::format(", {} recovery(ies)", trace.recoveries.size()));
  svg += fmt::format(
      "<text x=\"10\" y=\"42\" fill=\"#555\">top: tokens/s of all requests in {:g} s bins; bottom: each worker's "
      "compute time per token (median per bin); grey bands: a new placement being prepared; red: a recovery</text>\n",
      kTimelineBinSeconds);

  // Preparation of each rebalance, behind everything else.
  for (const auto& r : trace.rebalances) {
    const double x0 = x_of(r.decided_seconds), x1 = x_of(r.switched_seconds);
    if (x1 <= x0) continue;
    for (auto [top, bottom] : {std::pair{rate_top, rate_bottom}, std::pair{compute_top, compute_bottom}}) {
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#000\" "
          "fill-opacity=\"0.06\"/>\n",
          x0, top, x1 - x0, bottom - top);
    }
  }

  // Each recovery from its detection to its resumption, tinted.
  for (const auto& r : trace.recoveries) {
    const double x0 = x_of(r.detected_seconds), x1 = x_of(r.failed ? r.detected_seconds : r.resumed_seconds);
    if (x1 <= x0) continue;
    for (auto [top, bottom] : {std::pair{rate_top, rate_bottom}, std::pair{compute_top, compute_bottom}}) {
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" "
          "fill-opacity=\"0.1\"/>\n",
          x0, top, x1 - x0, bottom - top, kRecoveryColor);
    }
  }

  // About ten time ticks, with grid lines through both panels.
  std::vector<double> time_ticks;
  const double time_step = tick_step(end_seconds / 2);
  for (int k = 0; k * time_step <= end_seconds * (1 + 1e-9); ++k) time_ticks.push_back(k * time_step);
  for (double s : time_ticks) {
    for (auto [top, bottom] : {std::pair{rate_top, rate_bottom}, std::pair{compute_top, compute_bottom}}) {
      svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>\n",
                         x_of(s), top, bottom);
    }
  }

  // Top: tokens/s.
  double max_rate = 0;
  for (const auto& b : bins) max_rate = std::max(max_rate, b.tokens_per_second);
  max_rate = max_rate > 0 ? max_rate * 1.1 : 1;
  svg += value_axis(rate_top, kRatePanelHeight, max_rate, "tokens/s");
  for (const auto& b : bins) {
    const double h = kRatePanelHeight * b.tokens_per_second / max_rate;
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{:.1f}-{:.1f} s: {} "
        "tokens, {:.2f} tokens/s</title></rect>\n",
        x_of(b.begin_seconds) + 0.5, rate_bottom - h, std::max(x_of(b.end_seconds) - x_of(b.begin_seconds) - 1, 0.5), h,
        kRateColor, b.begin_seconds, b.end_seconds, b.tokens, b.tokens_per_second);
  }
  if (bins.empty()) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#999\">no tokens</text>\n", kLeft + 10,
                       rate_top + kRatePanelHeight / 2);
  }

  // Bottom: compute ms per token, a line per worker broken where the worker computed nothing.
  double max_ms = 0;
  for (const auto& per_bin : medians) {
    for (double s : per_bin) max_ms = std::max(max_ms, s * 1e3);
  }
  max_ms = max_ms > 0 ? max_ms * 1.1 : 1;
  svg += value_axis(compute_top, kComputePanelHeight, max_ms, "compute ms per token");
  auto y_of_ms = [&](double ms) { return compute_bottom - kComputePanelHeight * ms / max_ms; };
  for (size_t w = 0; w < n_workers; ++w) {
    std::string path, dots;
    bool drawing = false;
    for (size_t b = 0; b < bins.size(); ++b) {
      const double s = medians[w][b];
      if (s < 0) {
        drawing = false;
        continue;
      }
      const double x = x_of((bins[b].begin_seconds + bins[b].end_seconds) / 2), y = y_of_ms(s * 1e3);
      path += fmt::format("{}{:.1f},{:.1f} ", drawing ? "L" : "M", x, y);
      dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2\"/>", x, y);
      drawing = true;
    }
    if (path.empty()) continue;
    svg += fmt::format(
        "<g fill=\"{0}\"><title>{1}: compute ms per token</title><path d=\"{2}\" fill=\"none\" stroke=\"{0}\" "
        "stroke-width=\"2\"/>{3}</g>\n",
        chart_color(w), svg_escape(worker_name(trace, w)), path, dots);
  }

  // Rebalances and speed changes across both panels, labelled in the band above. A line runs
  // down from its label through the rows below, so the rows are drawn from the top: each label's
  // white outline then covers the lines of the rows above it.
  std::stable_sort(markers.begin(), markers.end(), [](const Marker& a, const Marker& b) { return a.row < b.row; });
  for (const auto& m : markers) {
    const double x = x_of(m.seconds), label_y = kBandTop + m.row * kRowHeight + 11;
    svg += fmt::format(
        "<g><title>{}</title><line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"1.5\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"{}\" stroke=\"white\" "
        "stroke-width=\"3\" paint-order=\"stroke\" text-anchor=\"{}\">{}"
        "</text></g>\n",
        svg_escape(m.title), x, label_y + 3, x, compute_bottom, m.color,
        m.dashed ? kDashed : m.dotted ? kDotted : "",
        m.label_left ? x - 3 : x + 3, label_y, m.color, m.label_left ? "end" : "start", svg_escape(m.label));
  }

  // Time axis, shared by both panels.
  for (double s : time_ticks) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#333\"/><text x=\"{0:.1f}\" "
        "y=\"{3:.1f}\" text-anchor=\"middle\" font-size=\"10\">{4:g}</text>\n",
        x_of(s), axis_y, axis_y + 5, axis_y + 17, s);
  }
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#333\">seconds since the run "
      "began</text>\n",
      kLeft + kPlotWidth / 2, axis_y + 32);

  // Legend: the workers' colours, then the kinds of vertical lines.
  auto legend_at = [&](size_t i) {
    return std::pair{kLeft + static_cast<double>(i % kLegendColumns) * 150,
                     legend_y + static_cast<double>(i / kLegendColumns) * 18};
  };
  for (size_t w = 0; w < n_workers; ++w) {
    const auto [x, y] = legend_at(w);
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"14\" height=\"4\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{:.1f}\">{}"
        "</text>\n",
        x, y - 6, chart_color(w), x + 20, y, svg_escape(worker_name(trace, w)));
  }
  for (size_t k = 0; k < std::size(kLineKinds); ++k) {
    const auto [x, y] = legend_at(n_workers + k);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"1.5\"{}/><text "
        "x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        x, y - 4, x + 14, y - 4, kLineKinds[k].color, kLineKinds[k].dash, x + 20, y,
        kLineKinds[k].name);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace ll::cluster
