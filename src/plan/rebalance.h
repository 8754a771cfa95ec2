#pragma once
// Whether a running pipeline should move units between its workers, and what would move.
//
// decide_rebalance scales every device's profiled decode times by its observed slowdown (from
// cluster::SpeedMonitor), prices the current placement with the CostModel, plans anew with the
// planner of PlanOptions under the same objective, and compares. The cost per token is the
// latency through the ring (objective latency) or the slowest stage (objective throughput).
//
// THE RULE: switch only when both hold
//   1. gain = (current - target) / current >= min_gain (10%), and
//   2. (current - target) x remaining tokens >= payback x predicted stall (payback = 3), where
//      the stall (from the last step's start until the pipeline restarts) is one token through
//      the current placement (the drain) + for each pair of workers that moves KV, its bytes /
//      that link's bandwidth + rtt / 2, summed (pairs that could send at once are not credited)
//      + 2 x the largest round-trip time among the workers involved (SendKv, SwitchSegment).
// Hysteresis: a plan less than 10% better is never taken, so two placements of nearly equal cost
// do not alternate; and after a switch the head resets the SpeedMonitor, whose slowdowns stay
// unknown (no decision) until a full fresh window was measured on the new placement.
// Weights are loaded in the background while steps flow, so they do not count in the stall.
//
// Cost per call, 46 units x 4 devices (rebalance_test prints it): with the dp planner, exact for
// both objectives and pin_first, well under a millisecond; with milp 7-45 ms (throughput
// bisects over several solves), a noticeable share of a 250 ms period: the policy should use dp.
// PlanOptions::time_limit_seconds bounds milp's branch and bound, not its LP solves.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "model/units.h"
#include "plan/cost_model.h"
#include "plan/planners.h"
#include "profile/device_profile.h"

namespace ll::plan {

struct RebalanceInput {
  std::vector<profile::DeviceProfile> devices;  // every worker, in ring order (holding units or not)
  std::vector<profile::LinkProfile> links;
  CostOptions cost;
  PlanOptions plan{.planner = Planner::Dp};  // planner (dp: see above), objective, pin_first
  std::vector<double> slowdown;            // per device: observed / profiled time (1 = as profiled)
  std::vector<model::UnitRange> current;   // per device; empty: holds nothing
  // Per device: false for one that is lost (its link is down); the target gives it nothing.
  // Empty: every device is available.
  std::vector<bool> available;
  int64_t remaining_tokens = 0;            // see remaining_tokens()
  std::vector<int64_t> live_positions;     // per live sequence: the positions in its KV cache
  double min_gain = 0.10;
  double payback = 3.0;
};

// What one worker does in the switch.
struct WorkerMove {
  model::UnitRange before, after;
  uint64_t new_weight_bytes = 0;  // weights of units it holds after but not before
  uint64_t kv_in_bytes = 0;       // KV of attention units it receives
  uint64_t kv_out_bytes = 0;      // KV of attention units it hands to another worker
};

struct RebalanceDecision {
  bool switch_now = false;
  std::vector<model::UnitRange> target;  // per device: the planner's placement, taken only on switch_now
  double current_cost_seconds = 0;       // per token, under the observed slowdowns
  double target_cost_seconds = 0;
  double gain = 0;  // (current - target) / current
  std::vector<WorkerMove> workers;  // per device
  uint64_t weight_bytes = 0;        // sum of new_weight_bytes
  uint64_t kv_bytes = 0;            // sum of kv_in_bytes
  double predicted_stall_seconds = 0;
  std::string summary;  // "attn[5]..ffn[7] b -> c; head c -> a" (summarize_moves)
  std::string reason;   // why it switches or why not, with the numbers
  double plan_seconds = 0;  // how long the planner took
};

// Decides on the numbers given alone (no I/O). Errors: inputs of the wrong size, a slowdown that
// is not a positive number, current ranges that do not cover the model, or no plan at all (the
// available devices cannot hold the model: the planner's error says why).
// After a device loss the head takes `target` whatever `switch_now` says: the current placement
// holds units on a device that is gone.
Result<RebalanceDecision> decide_rebalance(const graph::Graph& g, const RebalanceInput& in);

// What a change of placement moves, as text: maximal runs of consecutive units that go from one
// device to the same other device, "first..last from -> to" (one unit: "name from -> to"),
// joined by "; ", in unit order. "no change" when nothing moves. `names` per device.
std::string summarize_moves(const graph::Graph& g, const std::vector<std::string>& names,
                            const std::vector<model::UnitRange>& before, const std::vector<model::UnitRange>& after);

// The progress of one live sequence.
struct SequenceProgress {
  int64_t positions = 0;   // in its KV cache now (prompt + generated so far)
  int64_t generated = 0;   // tokens generated so far
  int64_t n_predict = -1;  // tokens it may generate; < 0: until the context is full
};

// Tokens still to come: each sequence until n_predict, or until positions reach n_ctx, whichever
// comes first. Under the latency objective the sequences advance side by side, so the run lasts
// as long as its longest sequence: the largest count; under throughput every token passes the
// slowest stage: the sum.
int64_t remaining_tokens(const std::vector<SequenceProgress>& sequences, int64_t n_ctx, Objective objective);

}  // namespace ll::plan
