#pragma once
// What a head records while it generates, for the timeline (`--timeline`) and the balancer's
// reports: every decode token with the time each stage took for it, and every rebalance.
// Times are seconds since the run began. Plain data.
#include <cstdint>
#include <string>
#include <vector>

#include "model/units.h"

namespace ll::cluster {

struct StageTime {
  size_t worker = 0;          // index among the head's workers
  double compute_seconds = 0;
  double send_seconds = 0;    // the hand-off to the next stage (as reported with the following step)
  double queue_seconds = 0;   // waiting at the worker before its compute began
};

struct TokenTrace {
  double seconds = 0;  // when the token reached the head
  size_t request = 0;
  std::vector<StageTime> stages;  // in pipeline order
};

struct RebalanceEvent {
  double detected_seconds = 0;  // the monitor first saw the change that led to it
  double decided_seconds = 0;   // the policy chose the new placement; preparing began
  double switched_seconds = 0;  // the new placement runs (or the attempt was given up)
  double stall_seconds = 0;     // steps held back: from the first held to the restart on the new pipeline
  double predicted_gain = 0;    // fraction of the per-token time (or the slowest stage) saved
  std::vector<model::UnitRange> before, after;  // per worker; empty: holds nothing
  uint64_t weight_bytes = 0;    // weights a worker had to read or receive
  uint64_t kv_bytes = 0;        // KV caches moved between workers
  std::string summary;          // "attn[5]..ffn[7] b -> c; head c -> a"
  bool aborted = false;
  std::string why;              // the reason for it, or why it was given up
};

// A worker of the pipeline lost and the run carried on without it (or ended, when the
// survivors cannot hold the model). Times are seconds since the run began; each phase ends
// where the next begins: detect (the last message from the lost worker to detected), re-plan,
// load (every survivor prepared its new segment), replay (the sequences' tokens run again as
// one prefill each, to the first new token).
struct RecoveryEvent {
  size_t worker = 0;             // the lost one
  std::string why;               // "connection closed by the server or lost (heartbeat timeout)"
  double last_heard_seconds = 0; // the last message from it
  double detected_seconds = 0;
  double planned_seconds = 0;
  double loaded_seconds = 0;
  double resumed_seconds = 0;    // the first token after the replay reached the head
  std::vector<model::UnitRange> before, after;  // per worker; empty: holds nothing
  std::string summary;           // the new placement, as plan::summarize_moves words it
  size_t sequences = 0;          // replayed
  uint64_t replayed_tokens = 0;  // prompt and generated tokens run again, over all sequences
  bool failed = false;           // no placement on the survivors: the affected requests ended
  std::string error;             // why it failed
};

// A worker taken back after it was lost (its link answers again); the balancer may then give
// it units by its usual rule.
struct RejoinEvent {
  size_t worker = 0;
  double seconds = 0;
};

struct RunTrace {
  std::vector<std::string> worker_names;
  std::vector<TokenTrace> tokens;
  std::vector<RebalanceEvent> rebalances;
  std::vector<RecoveryEvent> recoveries;
  std::vector<RejoinEvent> rejoins;
  // Changes of an emulated device's speed and its faults during the run (see
  // emulate::SpeedSchedule), as text for the chart: "b: cpu 0.15", "b: killed".
  struct Mark {
    double seconds = 0;
    std::string label;
  };
  std::vector<Mark> marks;
};

}  // namespace ll::cluster
