#pragma once
// Generation speed of sequences that ran through a pipeline together.
#include <vector>

#include "cluster/head.h"
#include "core/status.h"

namespace ll::cluster {

// Tokens per second while every sequence was generating: from the last sequence's first token
// (before it, some stages still work on other prompts) to the first sequence's last token
// (after it, fewer sequences fill the pipeline), counting the tokens all sequences produced in
// between. For one sequence: its tokens after the first over its decode time. An error when a
// sequence has fewer than two tokens or the sequences never generated at the same time.
Result<double> steady_generation_tps(const std::vector<Generation>& gens);

// The decode steps of sequences that ran together, summed per stage and over the pipeline.
struct GenerationTotals {
  std::vector<StageStats> stages;  // one per stage of the pipeline
  uint64_t decode_steps = 0;
  uint64_t round_trip_us = 0;
  uint64_t wire_bytes = 0;
};
GenerationTotals total_generations(const std::vector<Generation>& gens, size_t n_stages);

}  // namespace ll::cluster
