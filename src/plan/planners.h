#pragma once
// Planners: assign every unit to a device so that each device holds one contiguous range or
// nothing, in the ring order of the devices given, within every device's memory.
//   milp    mixed-integer linear program solved with COIN-OR Clp and CBC (optimal)
//   dp      dynamic programming over (unit prefix, device) (optimal; an independent check)
//   even    equal layers per device, embedding with the first, head with the last
//   memory  layers in proportion to usable memory (as llama.cpp and exo split)
// Objectives: latency = one token's time through the ring (all compute and transfers,
// including the sampled token's return to the first device); throughput = the slowest
// stage (its compute plus its outgoing transfer), ties broken by latency; energy = the least
// joules per token of all devices (cost_model.h) among the plans whose latency is within
// max_latency_seconds (milp only: a bound on a sum is no dynamic program over stages).
// Every planner keeps a device on low battery within its share (CostModel::max_units); milp
// and dp plan around it, the baselines fail when their split breaks it.
#include <string>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "model/units.h"
#include "plan/cost_model.h"
#include "plan/plan.h"
#include "plan/planner_name.h"
#include "profile/device_profile.h"

namespace ll::plan {

struct PlanOptions {
  Planner planner = Planner::Milp;
  Objective objective = Objective::Latency;
  // The first device in the ring (the head: it tokenizes and gets the sampled tokens back)
  // holds the embedding.
  bool pin_first = false;
  double time_limit_seconds = 60;  // milp: how long CBC may branch when a relaxation is fractional
  double max_latency_seconds = 0;  // energy: the latency bound (required there, refused elsewhere)
};

// What a planner decides: one unit range per device, in ring order (empty: holds nothing).
struct Assignment {
  std::vector<model::UnitRange> ranges;
  bool proven_optimal = false;
};

// The entry point: profiles and links in, a plan out.
Result<Plan> make_plan(const graph::Graph& g, const std::vector<profile::DeviceProfile>& devices,
                       const std::vector<profile::LinkProfile>& links, const CostOptions& cost, const PlanOptions& options);
Result<Plan> make_plan(const CostModel& cost, const PlanOptions& options);

Result<Assignment> plan_milp(const CostModel& cost, const PlanOptions& options);
Result<Assignment> plan_dp(const CostModel& cost, const PlanOptions& options);
Result<Assignment> plan_even(const CostModel& cost, const PlanOptions& options);
Result<Assignment> plan_memory(const CostModel& cost, const PlanOptions& options);

// The predictions for an assignment.
Plan build_plan(const CostModel& cost, const Assignment& a, const std::string& planner, Objective objective);

// Why the model cannot be placed: memory needed and offered, and what to do about it.
Status infeasible_error(const CostModel& cost, const PlanOptions& options);

}  // namespace ll::plan
