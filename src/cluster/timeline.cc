// The timeline's files and its JSON; the chart is drawn in timeline_svg.cc.
#include "cluster/timeline.h"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace ll::cluster {

using nlohmann::json;

std::vector<RateBin> rate_bins(const RunTrace& trace, double bin_seconds) {
  if (trace.tokens.empty()) return {};
  double last = 0;
  for (const auto& t : trace.tokens) last = std::max(last, t.seconds);
  std::vector<RateBin> bins(static_cast<size_t>(std::floor(last / bin_seconds)) + 1);
  for (size_t k = 0; k < bins.size(); ++k) {
    bins[k].begin_seconds = static_cast<double>(k) * bin_seconds;
    bins[k].end_seconds = std::min(static_cast<double>(k + 1) * bin_seconds, last);
  }
  for (const auto& t : trace.tokens) {
    ++bins[std::min(static_cast<size_t>(std::max(t.seconds, 0.0) / bin_seconds), bins.size() - 1)].tokens;
  }
  if (bins.size() > 1 && bins.back().end_seconds - bins.back().begin_seconds < bin_seconds / 2) {
    bins[bins.size() - 2].tokens += bins.back().tokens;
    bins[bins.size() - 2].end_seconds = bins.back().end_seconds;
    bins.pop_back();
  }
  for (auto& b : bins) {
    const double width = b.end_seconds - b.begin_seconds;
    b.tokens_per_second = width > 0 ? static_cast<double>(b.tokens) / width : 0;
  }
  return bins;
}

std::string timeline_svg_path(const std::string& json_path) {
  const std::string ext = ".json";
  if (json_path.size() > ext.size() && json_path.ends_with(ext)) {
    return json_path.substr(0, json_path.size() - ext.size()) + ".svg";
  }
  return json_path + ".svg";
}

namespace {

json ranges_json(const std::vector<model::UnitRange>& ranges) {
  json out = json::array();
  for (const auto& r : ranges) out.push_back({r.begin, r.end});
  return out;
}

}  // namespace

json rebalance_json(const RebalanceEvent& r) {
  return {{"detected_seconds", r.detected_seconds},
          {"decided_seconds", r.decided_seconds},
          {"switched_seconds", r.switched_seconds},
          {"stall_seconds", r.stall_seconds},
          {"predicted_gain", r.predicted_gain},
          {"before", ranges_json(r.before)},
          {"after", ranges_json(r.after)},
          {"weight_bytes", r.weight_bytes},
          {"kv_bytes", r.kv_bytes},
          {"summary", r.summary},
          {"aborted", r.aborted},
          {"why", r.why}};
}

json recovery_json(const RecoveryEvent& r) {
  return {{"worker", r.worker},
          {"why", r.why},
          {"last_heard_seconds", r.last_heard_seconds},
          {"detected_seconds", r.detected_seconds},
          {"planned_seconds", r.planned_seconds},
          {"loaded_seconds", r.loaded_seconds},
          {"resumed_seconds", r.resumed_seconds},
          {"before", ranges_json(r.before)},
          {"after", ranges_json(r.after)},
          {"summary", r.summary},
          {"sequences", r.sequences},
          {"replayed_tokens", r.replayed_tokens},
          {"failed", r.failed},
          {"error", r.error}};
}

json timeline_json(const RunTrace& trace) {
  json tokens = json::array();
  for (const auto& t : trace.tokens) {
    json stages = json::array();
    for (const auto& s : t.stages) {
      stages.push_back(
          {{"worker", s.worker}, {"compute_seconds", s.compute_seconds}, {"send_seconds", s.send_seconds}});
    }
    tokens.push_back({{"seconds", t.seconds}, {"request", t.request}, {"stages", std::move(stages)}});
  }
  json rebalances = json::array();
  for (const auto& r : trace.rebalances) rebalances.push_back(rebalance_json(r));
  json recoveries = json::array();
  for (const auto& r : trace.recoveries) recoveries.push_back(recovery_json(r));
  json rejoins = json::array();
  for (const auto& r : trace.rejoins) rejoins.push_back({{"worker", r.worker}, {"seconds", r.seconds}});
  json marks = json::array();
  for (const auto& m : trace.marks) marks.push_back({{"seconds", m.seconds}, {"label", m.label}});
  json rates = json::array();
  for (const auto& b : rate_bins(trace, kTimelineBinSeconds)) {
    rates.push_back({{"begin_seconds", b.begin_seconds},
                     {"end_seconds", b.end_seconds},
                     {"tokens", b.tokens},
                     {"tokens_per_second", b.tokens_per_second}});
  }
  return {{"workers", trace.worker_names},       {"tokens", std::move(tokens)},
          {"rebalances", std::move(rebalances)}, {"recoveries", std::move(recoveries)},
          {"rejoins", std::move(rejoins)},       {"marks", std::move(marks)},
          {"bin_seconds", kTimelineBinSeconds},  {"tokens_per_second", std::move(rates)}};
}

namespace {

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out)
    return Status::Errorf("cannot write the timeline file {}: check that its folder exists and is writable", path);
  return Status::Ok();
}

}  // namespace

Status write_timeline(const RunTrace& trace, const std::string& path) {
  LL_RETURN_IF_ERROR(write_file(path, timeline_json(trace).dump(1) + "\n"));
  return write_file(timeline_svg_path(path), timeline_svg(trace));
}

}  // namespace ll::cluster
