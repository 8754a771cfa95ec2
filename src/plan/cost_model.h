#pragma once
// The numbers a planner optimises, all per generated token:
//   compute(u, d)  = the decode time of unit u measured on device d (DeviceProfile, at its
//                    decode_context)
//   transfer       = bytes / bandwidth + rtt / 2 of the link between the two devices
//   cut bytes(u)   = bytes per token of the tensors produced at or before unit u and read
//                    after it (the data-dependency map; for Llama one hidden state)
//   return         = the sampled token id, from the last device back to the first
//   memory(u)      = weight bytes + KV bytes per token x n_ctx x n_parallel
//   memory(d)      = sum of its units' memory + working buffers, when d holds any unit
//   energy(d)      = idle_watts(d) x latency + (compute_watts(d) - idle_watts(d)) x compute(d)
//                    + radio_joules_per_byte(d) x (bytes d sends + bytes d receives)
//                    for every device given, holding units or not: all of them stay awake and
//                    connected while the ring runs, so each idles whenever it is not computing.
//                    Linear in the stage times, so a plan's energy is a sum over its stages
//                    (stage_joules) and the MILP stays a MILP.
//   share(d)       = ceil(units / devices): the most units a device below kLowBatteryPercent
//                    may hold (an even share of the units among all devices given)
// A tensor that skips over a segment is counted on every cut it spans (the Llama family has
// none; the partition sends such tensors directly, so this is an upper bound).
#include <cstdint>
#include <optional>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "model/hparams.h"
#include "model/units.h"
#include "profile/device_profile.h"

namespace ll::plan {

struct CostOptions {
  int64_t n_ctx = 2048;        // positions per sequence
  int n_parallel = 1;          // sequences in flight, each with its own KV cache
  uint64_t working_bytes = 0;  // scratch of a device that holds units (working_buffer_bytes)
  // Used for device pairs with no measured link in either direction; without it such a pair
  // is an error.
  std::optional<profile::LinkProfile> default_link;
};

// The executor's scratch for batches of up to `batch` tokens: 4 bytes x (batch x (3 n_embd +
// 2 q_dim + 2 n_ff) + threads x n_ctx attention scores + n_vocab logits).
uint64_t working_buffer_bytes(const model::HParams& hp, int64_t n_ctx, int threads, int64_t batch);
// The largest scratch among `devices`: that of the one with the most threads.
uint64_t working_buffer_bytes(const model::HParams& hp, int64_t n_ctx, const std::vector<profile::DeviceProfile>& devices,
                              int64_t batch);

// The cost of one device's stage for one token.
struct StageCost {
  model::UnitRange units;  // empty: the device holds nothing
  double compute_seconds = 0;
  double transfer_seconds = 0;  // sending its output on (or the token back to the first device)
  uint64_t send_bytes = 0;
  int send_to = -1;  // device index; -1 when it sends nothing
  uint64_t memory_bytes = 0;
  double joules = 0;  // per token, energy(d) above; 0 when a device's energy figures are unknown
};

struct Evaluation {
  std::vector<StageCost> stages;  // one per device, in ring order
  double latency_seconds = 0;     // one token through the ring: all compute and transfers
  double bottleneck_seconds = 0;  // the slowest stage: compute plus its outgoing transfer
  bool fits = true;               // every device within its usable memory
  bool within_shares = true;      // every device on low battery within its share
  double joules = 0;              // per token, all devices; 0 when energy_known() is false
};

class CostModel {
 public:
  static Result<CostModel> create(const graph::Graph& g, const std::vector<profile::DeviceProfile>& devices,
                                  const std::vector<profile::LinkProfile>& links, const CostOptions& options);

  int64_t n_units() const { return static_cast<int64_t>(graph_.units.size()); }
  int n_devices() const { return static_cast<int>(devices_.size()); }
  const graph::Graph& graph() const { return graph_; }
  const profile::DeviceProfile& device(int d) const { return devices_[d]; }
  const CostOptions& options() const { return options_; }

  double compute_seconds(int64_t u, int d) const { return devices_[d].decode_seconds[u]; }
  double compute_seconds(model::UnitRange r, int d) const {
    return compute_prefix_[d][r.end] - compute_prefix_[d][r.begin];
  }
  uint64_t memory_bytes(int64_t u) const { return memory_prefix_[u + 1] - memory_prefix_[u]; }
  uint64_t memory_bytes(model::UnitRange r) const { return memory_prefix_[r.end] - memory_prefix_[r.begin]; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  uint64_t kv_bytes() const { return kv_bytes_; }
  uint64_t limit_bytes(int d) const { return devices_[d].usable_memory_bytes; }
  // What the units themselves may take on device d: its usable memory less the working buffers.
  uint64_t capacity_bytes(int d) const;
  // Whether device d can hold the units of r (with its working buffers).
  bool fits(model::UnitRange r, int d) const { return memory_bytes(r) + options_.working_bytes <= limit_bytes(d); }

  uint64_t cut_bytes(int64_t u) const { return cut_bytes_[u]; }  // between units u and u + 1
  uint64_t return_bytes() const { return return_bytes_; }
  const profile::LinkProfile& link(int from, int to) const { return link_[from][to]; }
  double transfer_seconds(uint64_t bytes, int from, int to) const;
  double cut_seconds(int64_t u, int from, int to) const { return transfer_seconds(cut_bytes_[u], from, to); }
  double return_seconds(int from, int to) const { return from == to ? 0.0 : transfer_seconds(return_bytes_, from, to); }

  // Whether every device has energy figures.
  bool energy_known() const { return energy_known_; }
  // A stage's part of the ring's energy per token (see the top): device d computes for
  // `compute` seconds, then sends `bytes` to device `to` (stage seconds in all); every device's
  // idle draw is charged for the stage's duration. 0 when energy_known() is false.
  double stage_joules(int d, int to, double compute, double stage, uint64_t bytes) const;
  // The most units device d may hold: all of them, or its share on low battery.
  int64_t max_units(int d) const { return max_units_[d]; }
  bool low_battery(int d) const { return max_units_[d] < n_units(); }
  // Whether device d may hold the units of r: memory and battery share.
  bool allows(model::UnitRange r, int d) const { return fits(r, d) && r.end - r.begin <= max_units(d); }

  // `ranges`: one per device in ring order; the non-empty ones must cover all units in order.
  Status check_assignment(const std::vector<model::UnitRange>& ranges) const;
  Evaluation evaluate(const std::vector<model::UnitRange>& ranges) const;

 private:
  graph::Graph graph_;
  std::vector<profile::DeviceProfile> devices_;
  CostOptions options_;
  std::vector<std::vector<profile::LinkProfile>> link_;       // [from][to], resolved
  std::vector<std::vector<double>> compute_prefix_;  // [device][unit + 1]
  std::vector<uint64_t> memory_prefix_;              // [unit + 1]
  std::vector<uint64_t> cut_bytes_;
  uint64_t return_bytes_ = 0;
  uint64_t weight_bytes_ = 0, kv_bytes_ = 0;
  bool energy_known_ = false;
  double idle_watts_ = 0;  // all devices' idle draw
  std::vector<int64_t> max_units_;
};

}  // namespace ll::plan
