#pragma once
// Prompt and generation speed in the style of llama-bench: each test (pp<N>: a prompt of N
// tokens in one pass; tg<N>: N decode steps) repeated from an empty context or from a cache
// already holding `depth` positions, as mean and
// standard deviation of tokens/s, beside the memory bandwidth measured with the same threads,
// the ceiling for generation.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"
#include "model/units.h"

namespace ll::exec {

struct BenchOptions {
  model::UnitRange units;        // the segment to run (the model must bind its weights)
  std::vector<int64_t> n_prompt;  // prompt tests; 0 skips
  std::vector<int64_t> n_gen;     // generation tests; 0 skips
  std::vector<int> threads;       // every test runs with each thread count
  std::vector<int64_t> depth = {0};  // positions already in the cache when a test starts (llama-bench's -d)
  model::KvTypes kv_types;
  int repetitions = 5;
  std::function<void(const std::string&)> progress = [](const std::string&) {};
};

struct BenchResult {
  std::string test;  // "pp64", "tg32", "tg32 @ d4096"
  int threads = 0;
  double mean = 0, stddev = 0;     // tokens/s
  double bandwidth = 0;            // bytes/s, measured with the same threads (generation: between its repetitions)
  double bandwidth_fraction = 0;   // generation only: bytes_per_token * tokens/s / bandwidth
  uint64_t resident_bytes = 0;     // of the process at the test's end, its KV cache still held
  bool generation() const { return test[0] == 't'; }
};

Result<std::vector<BenchResult>> run_bench(const model::Model& m, const BenchOptions& options);

// Bytes a decode step reads: every bound weight, but only one row of the embedding, and the
// rope frequency factors not at all (they are read once, when the executor starts).
uint64_t bytes_per_token(const model::Model& m);

// "BEGIN:END" -> units [BEGIN, END) of the model; "" -> all of them.
Result<model::UnitRange> parse_unit_range(const std::string& text, const model::HParams& hp);

}  // namespace ll::exec
