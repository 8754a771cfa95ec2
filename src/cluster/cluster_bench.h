#pragma once
// The harness of `lingualinked cluster-bench`: the speed of a pipeline of workers against a
// single process measured in the same run with the same threads per process: prompt and
// generation tokens/s, per-token latency and bytes on the wire, for 1 and K concurrent
// sequences, for one or several placements (cuts, or one plan per planner).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cluster/head.h"
#include "cluster/pipeline.h"
#include "exec/segment_executor.h"
#include "model/model.h"

namespace ll::cluster {

struct BenchSpeed {
  double prompt_tps = 0;
  double gen_tps = 0;
};

// One process, the whole model: the prompt in one pass, then n_gen decode steps. Its rounds
// alternate with a pipeline's, so that drift in the machine's speed (its memory bandwidth
// wanders by 15-20% over minutes) falls on both alike. `tokens` must outlive it.
class SingleProcessBench {
 public:
  // Runs once to page the weights in; that run is not counted.
  static Result<std::unique_ptr<SingleProcessBench>> start(const model::Model& m, int threads,
                                                           const std::vector<int32_t>& tokens, int64_t n_prompt,
                                                           int64_t n_gen);
  // One more timed round; best() keeps the fastest of all.
  Status round();
  const BenchSpeed& best() const { return best_; }

 private:
  SingleProcessBench(const model::Model& m, int threads, const std::vector<int32_t>& tokens, int64_t n_prompt,
                     int64_t n_gen);
  Result<BenchSpeed> run();

  exec::SegmentExecutor ex_;
  const std::vector<int32_t>& tokens_;
  int64_t n_prompt_, n_gen_;
  std::vector<float> hidden_, logits_;
  BenchSpeed best_;
};

struct BenchRound {
  int sequences = 1;
  double prompt_tps = 0;  // prompt tokens of all sequences / time to the last first token
  double gen_tps = 0;     // while all sequences generate: steady_generation_tps
  double latency_ms = 0;  // mean decode round trip
  double wire_kib_per_token = 0;
  std::vector<Generation> gens;
};

// One placement of the model on the workers and its best rounds, for 1 and K sequences.
struct PlacementBench {
  std::string label;                       // the planner's name, or "cuts ..."
  std::optional<plan::Plan> plan{};          // when planned
  std::vector<WorkerInfo> workers{};         // of the pipeline, in ring order
  std::vector<model::UnitRange> segments{};  // segments[i] ran on workers[i]
  std::vector<BenchRound> rounds{};
};

// The plan's prediction: one sequence takes the ring's latency per token; k sequences overlap
// up to the slowest stage.
double predicted_tokens_per_second(const plan::Plan& plan, int sequences);

struct ClusterBenchOptions {
  std::string model_path;  // as the workers open it
  HeadOptions head;
  SegmentLoadOptions load;
  std::string cuts;                       // non-empty: this one placement
  std::vector<PlanningOptions> planners;  // else one placement per planner, from one profiling
  BalanceOptions balance;                 // re-planning while the rounds run
  std::vector<int32_t> tokens;            // n_prompt + n_gen + parallel random tokens
  int64_t n_prompt = 64, n_gen = 32;
  int64_t prompt_chunk = 0;  // Head::set_prompt_chunk
  int parallel = 1;     // K
  int repetitions = 1;  // rounds per test; the best is kept
  SingleProcessBench* baseline = nullptr;  // its rounds alternate with the one-sequence rounds
  const std::atomic<bool>* cancel = nullptr;  // stops before the next placement
  ProgressNote progress;
  // Called as each test's best round is known, so that tables can be printed as they grow.
  std::function<void(const PlacementBench&, const BenchRound&)> on_round;
};

Result<std::vector<PlacementBench>> run_cluster_bench(const model::Model& model, const ClusterBenchOptions& options);

// Random tokens of `model`'s vocabulary, the same for every run.
std::vector<int32_t> bench_tokens(const model::Model& model, size_t count);
// k greedy requests whose prompts are the n_prompt tokens of `tokens` from 0, 1, .., k - 1 on
// (distinct, so that no sequence is a copy of another; `tokens` holds n_prompt + k - 1 at least),
// each generating n_gen tokens whatever end of text it meets.
std::vector<Request> bench_requests(const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen, size_t k);

}  // namespace ll::cluster
