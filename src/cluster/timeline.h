#pragma once
// The timeline of a generation (`--timeline FILE`): the RunTrace as JSON for tools, and an SVG
// chart for people.
//
// Files: write_timeline(trace, "run.json") writes run.json and run.svg; a path that does not end
// in ".json" gets ".svg" appended for the chart ("run" -> "run" and "run.svg").
//
// The JSON object:
//   workers            ["a", "b", ...]: the names; "worker" fields below index this array
//   tokens             [{seconds, request, stages: [{worker, compute_seconds, send_seconds}]}]
//   rebalances         [{detected_seconds, decided_seconds, switched_seconds, stall_seconds,
//                        predicted_gain, before: [[begin, end], ...], after: [[begin, end], ...],
//                        weight_bytes, kv_bytes, summary, aborted, why}]  (ranges per worker,
//                        end exclusive; end <= begin: holds nothing)
//   recoveries         [{worker, why, last_heard_seconds, detected_seconds, planned_seconds,
//                        loaded_seconds, resumed_seconds, before, after, summary, sequences,
//                        replayed_tokens, failed, error}]  (a lost worker of the pipeline)
//   rejoins            [{worker, seconds}]
//   marks              [{seconds, label}]  (speed changes and faults of emulated devices)
//   bin_seconds        the width of the bins below (kTimelineBinSeconds)
//   tokens_per_second  [{begin_seconds, end_seconds, tokens, tokens_per_second}]: all requests'
//                      tokens counted in consecutive bins from 0 (see rate_bins)
//
// The chart: tokens/s on top; below it each worker's compute time per token (ms, median per
// bin, one line per worker); rebalances as solid vertical lines labelled with their summary and
// stall (aborted ones dashed grey); recoveries as solid red lines at their resumption labelled
// with the lost worker and their time from detection (failed ones dashed), with a red band from
// detection to resumption; rejoins as dotted green lines; speed changes and faults (marks) as
// dashed lines with their label.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cluster/run_trace.h"
#include "core/status.h"

namespace ll::cluster {

inline constexpr double kTimelineBinSeconds = 0.5;

struct RateBin {
  double begin_seconds = 0, end_seconds = 0;
  size_t tokens = 0;
  double tokens_per_second = 0;
};

// The tokens of all requests counted in bins [k * bin, (k + 1) * bin) from 0 to the last token.
// The last bin ends at the last token; when that leaves it shorter than half a bin, its tokens
// join the bin before it (a sliver's rate would be mostly noise).
std::vector<RateBin> rate_bins(const RunTrace& trace, double bin_seconds);

// Where the chart of `json_path` goes (see above).
std::string timeline_svg_path(const std::string& json_path);

nlohmann::json timeline_json(const RunTrace& trace);
// One rebalance as the timeline's JSON holds it.
nlohmann::json rebalance_json(const RebalanceEvent& event);
// One recovery as the timeline's JSON holds it.
nlohmann::json recovery_json(const RecoveryEvent& event);
std::string timeline_svg(const RunTrace& trace);

// Writes the JSON to `path` and the chart to timeline_svg_path(path).
Status write_timeline(const RunTrace& trace, const std::string& path);

}  // namespace ll::cluster
