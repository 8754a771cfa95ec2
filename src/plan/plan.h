#pragma once
// A plan: which device runs which contiguous range of units, in ring order, with what the
// cost model predicts for it. Plain data: printed, saved as JSON, read back, turned into a
// Partition, drawn as SVG.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "model/units.h"

namespace ll::plan {

enum class Objective { Latency, Throughput, Energy };
const char* objective_name(Objective o);
Result<Objective> parse_objective(const std::string& name);

struct DeviceAssignment {
  int device = 0;  // index in the ring order the planner was given
  std::string name;
  model::UnitRange units;  // empty: the device holds nothing
  std::string first_unit, last_unit;
  int64_t layers = 0;           // attention layers held
  double compute_seconds = 0;   // per token
  double transfer_seconds = 0;  // per token, sending to `send_to`
  uint64_t send_bytes = 0;
  std::string send_to;  // empty when it sends nothing
  uint64_t memory_bytes = 0;
  uint64_t memory_limit_bytes = 0;
  double joules = 0;  // per token (idle, compute, radio); 0 when the energy figures are unknown

  // "embed..ffn[8]", or "head" for a single unit.
  std::string span() const { return first_unit == last_unit ? first_unit : first_unit + ".." + last_unit; }
};

struct Plan {
  std::string planner;  // milp, dp, even, memory
  Objective objective = Objective::Latency;
  bool proven_optimal = false;
  int64_t n_ctx = 0;
  int n_parallel = 1;
  std::vector<DeviceAssignment> devices;  // every device, in ring order
  double latency_seconds = 0;             // one token through the ring, compute and transfers
  double bottleneck_seconds = 0;          // the slowest stage (compute + outgoing transfer)
  // One sequence: 1 / latency. With n_parallel sequences in flight the stages overlap:
  // min(n_parallel / latency, 1 / bottleneck).
  double tokens_per_second = 0;
  double pipelined_tokens_per_second = 0;
  bool energy_known = false;  // every device had energy figures
  double joules_per_token = 0;  // all devices, one token through the ring
  double max_latency_seconds = 0;  // the energy objective's bound; 0: none

  // The devices that hold units, in ring order, and the first unit of every segment but the first.
  std::vector<int> used_devices() const;
  std::vector<int64_t> cuts() const;
  Result<graph::Partition> to_partition(const graph::Graph& g) const;
};

nlohmann::json to_json(const Plan& p);
Result<Plan> plan_from_json(const nlohmann::json& j);

// "12.3 MiB".
std::string format_mib(uint64_t bytes);
// One row per device: units, layers, memory, compute and transfer per token (and joules per
// token when energy_known); then totals.
std::string format_plan(const Plan& p);
// Devices as lanes; one token's path through the ring on a time axis: segments as bars as
// long as their compute time, transfers as arrows to the next lane.
Status write_svg(const Plan& p, const std::string& path);

}  // namespace ll::plan
