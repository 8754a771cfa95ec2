#pragma once
// How many tokens of a prompt go in each chunk that crosses the pipeline. The chunks follow one
// another without waiting, so that stage 1 computes chunk 2 while stage 2 computes chunk 1: small
// chunks fill the pipeline sooner, large ones pay each stage's per-chunk cost (reading the
// weights, the link's latency) fewer times. The pipeline is modelled as a flow shop: each
// resource (a device's compute, then the link it sends on) takes one chunk at a time, in order,
// for fixed + n x per_token seconds a chunk of n tokens.
#include <cstdint>
#include <vector>

#include "model/units.h"
#include "plan/cost_model.h"

namespace ll::plan {

struct PromptStageCost {
  double fixed_seconds = 0;      // per chunk, whatever its size
  double per_token_seconds = 0;  // per token of the chunk
};

// The resources a prompt crosses on the devices `order` (device indices of `cost`, in pipeline
// order) holding `ranges[d]`: each device's compute, fitted through its measured decode time of
// one token and its prompt time of a chunk of prompt_chunk tokens, and the link to the next device
// (rtt / 2 per chunk, the cut's bytes per token at the link's bandwidth).
std::vector<PromptStageCost> prompt_stage_costs(const CostModel& cost, const std::vector<model::UnitRange>& ranges,
                                                const std::vector<size_t>& order);
// The same from the devices' and links' profiles (one device per range); empty when they do not
// describe these devices for this graph.
std::vector<PromptStageCost> prompt_stage_costs(const graph::Graph& g, const profile::ClusterProfile& profile,
                                                const CostOptions& options, const std::vector<model::UnitRange>& ranges,
                                                const std::vector<size_t>& order);

// The time until the last of n_tokens has crossed every resource, sent in chunks of `chunk`.
double prompt_seconds(const std::vector<PromptStageCost>& stages, int64_t n_tokens, int64_t chunk);

// The chunk size that finishes a prompt of n_tokens soonest; among sizes within 2% of the best
// (the model's error), the largest, so that fewer messages cross. n_tokens without stages.
int64_t choose_prompt_chunk(const std::vector<PromptStageCost>& stages, int64_t n_tokens);

}  // namespace ll::plan
