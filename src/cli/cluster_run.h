#pragma once
// `lingualinked run --workers ...`: the same generation as `run`, over a cluster of workers,
// and the per-device report that `run` and `demo` print.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/common_options.h"
#include "cluster/head.h"
#include "cluster/pipeline.h"
#include "graph/graph.h"

namespace ll::cli {

// How the model is placed on the workers when no --cuts are given.
struct PlanningArgs {
  std::string planner = "milp";
  std::string objective;  // empty: latency for one sequence, throughput for several
  std::string profiles;
  std::string save_profiles;
  bool reprofile = false;
  int profile_repetitions = 3;
};

// --planner (one name, or with `allow_list` several to compare), --objective, --profiles,
// --save-profiles, --reprofile.
void add_planning_options(CLI::App& cmd, PlanningArgs& a, bool allow_list = false);
// The planning options for one planner; exits on a bad objective.
cluster::PlanningOptions planning_options(const PlanningArgs& a, plan::Planner planner, int n_parallel);

// --balance on|off, --timeline FILE.
struct BalanceArgs {
  std::string balance = "on";
  std::string timeline;
};
void add_balance_options(CLI::App& cmd, BalanceArgs& a);
// Re-planning while generating, each rebalance printed to stderr as it happens.
cluster::BalanceOptions balance_options(const BalanceArgs& a);

struct ClusterRunOptions {
  std::vector<std::string> workers;  // HOST:PORT or tcp://HOST:PORT
  std::string worker_keys;           // KEY,KEY,... or a file with one key per line, in worker order
  std::string key;                   // the head's key pair file
  bool paired_cluster = false;       // --cluster: every reachable paired device (resolve_paired_cluster)
  std::string remembered_dir;        // with --cluster: the configuration the devices came from
  std::string cuts;
  int parallel = 1;
  int64_t prompt_chunk = 0;  // --ubatch-size: tokens per prompt chunk; 0: chosen from the profiles
  bool insecure = false;
  bool send_shards = false;
  std::string wire_type = "f32";
  std::string head_listen;  // the head holds the first segment, served here
  PlanningArgs planning;
  BalanceArgs balance;
};

void add_cluster_run_options(CLI::App& cmd, ClusterRunOptions& o);
// --cluster: every paired device that is reachable now, and this head's remembered key.
void add_paired_cluster_option(CLI::App& cmd, bool& paired_cluster);
// With --cluster: finds the reachable paired devices and fills in workers, worker_keys and key,
// so that the rest runs as with --workers (exits on errors).
void resolve_paired_cluster(ClusterRunOptions& c);
// --wire-type f32|f16|bf16: how the stages send hidden states to each other.
void add_wire_type_option(CLI::App& cmd, std::string& wire_type);
wire::ActivationType wire_type(const std::string& name);  // of a name add_wire_type_option accepted
// The head's workers, their pinned keys and its own key pair from the options (exits on errors).
cluster::HeadOptions head_options(const ClusterRunOptions& c);

struct GenerationArgs {
  std::string prompt;
  int64_t n_predict = 128;
  text::SamplerParams sampling;
  int parallel = 1;  // sequences at once, seeds seed, seed + 1, ...
  std::string timeline;  // write the run's timeline here (cluster/timeline.h)
  // Called just before generation starts (demo: the devices' speed schedules), and after it for
  // the marks to draw on the timeline.
  std::function<void()> on_start;
  std::function<std::vector<cluster::RunTrace::Mark>()> marks;
  std::vector<int32_t> prompt_tokens;  // used instead of `prompt` when not empty
};

// Runs the generations on a head that has loaded its segments, streaming a single sequence to
// stdout (several are printed when done), then prints the per-device report to stderr.
// Returns false when any generation failed (its error is printed).
bool generate_on_cluster(cluster::Head& head, const graph::Graph& graph, const GenerationArgs& args);

void print_cluster_report(std::FILE* out, const std::vector<cluster::WorkerInfo>& workers, const graph::Graph& graph,
                          const std::vector<model::UnitRange>& segments, const std::vector<cluster::Generation>& gens);

// How run_on_cluster sets up its pipeline for `parallel` sequences at once (exits on errors).
cluster::PipelineOptions pipeline_options(const ClusterRunOptions& c, const ModelOptions& model_options,
                                          const model::HParams& hp, int parallel);

void run_on_cluster(const ClusterRunOptions& c, const ModelOptions& model, const GenerationArgs& args);

}  // namespace ll::cli
