#pragma once
// Setting up a pipeline. Given cuts, the model is cut there, one segment per worker. Otherwise
// the workers are profiled (per-unit compute times with their own threads and kernels, usable
// memory, and the links between them, all measured over the network), a planner (milp by
// default) assigns each worker one contiguous range of units or nothing, and the head connects
// to the workers the plan uses and loads their segments.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/head.h"
#include "cluster/in_process_worker.h"
#include "core/status.h"
#include "graph/graph.h"
#include "model/model.h"
#include "plan/plan.h"
#include "plan/planner_name.h"
#include "profile/device_profile.h"

namespace ll::cluster {

// `cuts` as for graph::parse_cuts ("4,9" or "attn[2],ffn[5]"); empty: even by layers.
Result<std::vector<model::UnitRange>> plan_segments(const graph::Graph& graph, size_t n_workers,
                                                    const std::string& cuts);
// "embed attn[0] .. ffn[3]" style summary of a unit range.
std::string describe_units(const graph::Graph& graph, model::UnitRange range);

struct PlanningOptions {
  plan::Planner planner = plan::Planner::Milp;
  std::optional<plan::Objective> objective;   // default: latency for one sequence, throughput for more
  int n_parallel = 1;                         // sequences in flight (KV caches to hold, objective)
  bool pin_first = false;                     // the first worker (the head's own) holds the embedding
  ProfileOptions profile;
  std::string profiles_path;  // read the devices and links from this JSON instead of measuring
  std::string save_profiles;  // write the measured profiles here
};

// A line of text saying what is being done (a whole piece of work: "profiling worker 1...").
using ProgressNote = std::function<void(const std::string&)>;

struct PipelineOptions {
  HeadOptions head;
  std::string cuts;  // given: cut there, one segment per worker, no profiling or planning
  // Given: the head holds the first segment (with the embedding) itself, on a worker of its own
  // served here with `head_threads` threads and put ahead of head.workers (see InProcessWorker),
  // its weights read into memory with head_no_mmap.
  std::string head_listen;
  int head_threads = 1;
  bool head_no_mmap = false;
  PlanningOptions planning;
  SegmentLoadOptions load;
  BalanceOptions balance;  // re-planning while generating (with cuts given: forced moves only)
  ProgressNote progress;
};

struct Pipeline {
  // The head's own worker, when it holds the first segment; declared before the head so that it
  // stops only after the head closed its links.
  std::unique_ptr<InProcessWorker> own_worker;
  std::unique_ptr<Head> head;
  std::vector<model::UnitRange> segments;  // as loaded: segments[i] on head->workers()[i] (empty: none)
  std::optional<plan::Plan> plan;          // what the planner predicted, when planned
};

// The workers' profiles, measured through a head connected to all of them, or read from
// planning.profiles_path (one device per worker, in the same order). Decoding is timed at
// half the context of n_ctx positions the run will use (at most planning.profile's), with the
// KV cache types it will use.
Result<profile::ClusterProfile> profile_workers(const std::string& model_path, const HeadOptions& head,
                                             const PlanningOptions& planning, int64_t n_ctx, model::KvTypes kv_types,
                                             const ProgressNote& progress = {});
// The planner's inputs for `model` on the profiled devices, for sequences of n_ctx positions.
Result<BalancePlanning> balance_planning(const model::Model& model, const profile::ClusterProfile& profile,
                                         const PlanningOptions& planning, int64_t n_ctx,
                                         model::KvTypes kv_types = {});
// The plan for `model` on the profiled devices, for sequences of n_ctx positions whose KV caches
// hold `kv_types`.
Result<plan::Plan> plan_pipeline(const model::Model& model, const profile::ClusterProfile& profile,
                                 const PlanningOptions& planning, int64_t n_ctx, model::KvTypes kv_types = {});
// Connects to every worker of `head.workers` (those the plan leaves out hold nothing until the
// balancer gives them units) and loads the segments of the others.
Result<Pipeline> start_planned_pipeline(const std::string& model_path, const model::Model& model, HeadOptions head,
                                        const plan::Plan& plan, const SegmentLoadOptions& load,
                                        const BalanceOptions& balance = {},
                                        std::optional<BalancePlanning> planning = std::nullopt);
// Starts the head's own worker when asked to; then, cuts given: the pipeline over all workers;
// else profile, plan, and start the planned one.
Result<Pipeline> start_pipeline(const std::string& model_path, const model::Model& model, PipelineOptions options);

}  // namespace ll::cluster
