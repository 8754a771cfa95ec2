#include "cluster/recovery_figures.h"

#include <algorithm>

namespace ll::cluster {

double on_run_clock(double seconds, std::chrono::steady_clock::time_point counted_from,
                    std::chrono::steady_clock::time_point run_began) {
  return seconds + std::chrono::duration<double>(counted_from - run_began).count();
}

namespace {

// The latest fault at or before `seconds`, on `worker` when there is one there.
std::optional<FaultTime> cause_of(const std::vector<FaultTime>& faults, size_t worker, double seconds) {
  const FaultTime *on_worker = nullptr, *any = nullptr;
  for (const FaultTime& f : faults) {
    if (f.seconds > seconds) continue;
    if (!any || f.seconds >= any->seconds) any = &f;
    if (f.worker == worker && (!on_worker || f.seconds >= on_worker->seconds)) on_worker = &f;
  }
  if (on_worker) return *on_worker;
  if (any) return *any;
  return std::nullopt;
}

}  // namespace

std::vector<RecoveryFigures> recovery_figures(const RunTrace& trace, const std::vector<FaultTime>& faults) {
  std::vector<RecoveryFigures> out;
  for (const RecoveryEvent& e : trace.recoveries) {
    RecoveryFigures f;
    f.event = e;
    f.fault = cause_of(faults, e.worker, e.detected_seconds);
    const double from = f.fault ? f.fault->seconds : e.last_heard_seconds;
    f.detect_seconds = e.detected_seconds - from;
    f.replan_seconds = e.planned_seconds - e.detected_seconds;
    f.load_seconds = e.loaded_seconds - e.planned_seconds;
    f.replay_seconds = e.resumed_seconds - e.loaded_seconds;
    f.total_seconds = e.resumed_seconds - from;
    out.push_back(std::move(f));
  }
  return out;
}

TokenComparison compare_tokens(const std::vector<int32_t>& reference, const std::vector<int32_t>& tokens,
                               const std::string& error) {
  TokenComparison c;
  c.reference_tokens = reference.size();
  c.tokens = tokens.size();
  c.error = error;
  const size_t common = std::min(reference.size(), tokens.size());
  for (size_t i = 0; i < common; ++i) c.altered += reference[i] != tokens[i];
  c.altered += tokens.size() - common;
  c.lost = reference.size() - common;
  return c;
}

}  // namespace ll::cluster
