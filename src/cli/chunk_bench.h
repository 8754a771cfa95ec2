#pragma once
// `cluster-bench --ubatch-size A,B,...`: one pipeline of local emulated devices, planned once,
// and the same prompt sent through it in chunks of each size in turn (A, B, A, B, ...), so that
// drift in the machine's speed falls on every size alike; the prompt's time (to its first token)
// of each size and its ratio to the first size's.
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/pipeline.h"
#include "model/model.h"

namespace ll::cli {

struct ChunkBenchOptions {
  std::string model_path;
  std::string devices;  // as for demo --devices
  int threads = 1;
  cluster::PlanningOptions planning;
  int64_t n_prompt = 512;
  std::vector<int64_t> sizes;  // --ubatch-size values: 0 = chosen from the profiles
  int repetitions = 3;
};

struct ChunkBenchResult {
  int64_t setting = 0;  // as given
  int64_t chunk = 0;    // as used
  std::vector<double> prompt_seconds;  // one per repetition, in order
  double median_seconds() const;
};

Result<std::vector<ChunkBenchResult>> run_chunk_bench(const model::Model& model, const ChunkBenchOptions& o);

std::string chunk_bench_markdown(const std::vector<ChunkBenchResult>& results, int64_t n_prompt);

}  // namespace ll::cli
