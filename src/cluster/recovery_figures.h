#pragma once
// The figures `cluster-bench` reports for a run with device faults (fail= schedules): per
// recovery, how long each phase took counted from the fault that caused it, and per request,
// the tokens lost or altered against an undisturbed reference run of the same requests.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/run_trace.h"

namespace ll::cluster {

// A fault an emulated device's schedule applied, on the run's clock (seconds since the run began).
struct FaultTime {
  double seconds = 0;
  size_t worker = 0;   // the head's index of the device's worker
  std::string label;   // "b: killed"
};

// A time counted from `counted_from` (a schedule's start) as seconds since `run_began`.
double on_run_clock(double seconds, std::chrono::steady_clock::time_point counted_from,
                    std::chrono::steady_clock::time_point run_began);

struct RecoveryFigures {
  RecoveryEvent event;
  // The fault taken as its cause: the latest on the lost worker at or before its detection
  // (else the latest on any worker); nullopt when there was none (detect then counts from
  // the last message heard from the worker).
  std::optional<FaultTime> fault;
  double detect_seconds = 0;  // fault (or last heard) -> detected
  double replan_seconds = 0;  // detected -> planned
  double load_seconds = 0;    // planned -> loaded
  double replay_seconds = 0;  // loaded -> resumed
  double total_seconds = 0;   // fault (or last heard) -> resumed
};

std::vector<RecoveryFigures> recovery_figures(const RunTrace& trace, const std::vector<FaultTime>& faults);

// One request of the disturbed run against the same request of the reference run.
struct TokenComparison {
  size_t reference_tokens = 0;
  size_t tokens = 0;
  size_t lost = 0;     // reference tokens that never came (the run ended early)
  size_t altered = 0;  // positions whose token differs, and tokens beyond the reference's
  std::string error;   // the request ended with this error (its lost tokens count apart)
  bool matches() const { return lost == 0 && altered == 0 && error.empty(); }
};

TokenComparison compare_tokens(const std::vector<int32_t>& reference, const std::vector<int32_t>& tokens,
                               const std::string& error);

}  // namespace ll::cluster
