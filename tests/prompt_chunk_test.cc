// A prompt's chunk size: the flow-shop time of a prompt through the pipeline's resources, and the
// size that minimises it.
#include "plan/prompt_chunk.h"

#include <gtest/gtest.h>

#include "graph/graph.h"

namespace ll {
namespace {

using plan::PromptStageCost;

// Two equal resources: 0.1 s per chunk and 0.1 s per token each.
const std::vector<PromptStageCost> kTwoEqual = {{.fixed_seconds = 0.1, .per_token_seconds = 0.1},
                                                {.fixed_seconds = 0.1, .per_token_seconds = 0.1}};

TEST(PromptChunk, TheWholePromptWaitsForEachResourceInTurn) {
  EXPECT_DOUBLE_EQ(plan::prompt_seconds(kTwoEqual, 10, 10), 2.2);
  EXPECT_DOUBLE_EQ(plan::prompt_seconds(kTwoEqual, 10, 100), 2.2) << "a chunk larger than the prompt is the prompt";
}

TEST(PromptChunk, ChunksOverlapAcrossResourcesAndTheLastMayBeSmaller) {
  // Chunks of 5: the first resource is done at 0.6 and 1.2, the second at 1.2 and 1.8.
  EXPECT_NEAR(plan::prompt_seconds(kTwoEqual, 10, 5), 1.8, 1e-12);
  // Chunks of 4, 4 and 2: the second resource is done at 1.0, 1.5 and 1.8.
  EXPECT_NEAR(plan::prompt_seconds(kTwoEqual, 10, 4), 1.8, 1e-12);
  // Ten chunks of one pay the per-chunk cost ten times: 10 x 0.2 + 0.2.
  EXPECT_NEAR(plan::prompt_seconds(kTwoEqual, 10, 1), 2.2, 1e-12);
}

TEST(PromptChunk, ChoosesTheLargestChunkOfTheShortestTime) {
  // 2, 3, 4 and 5 all take 1.8 s; 6 takes 1.9 s.
  EXPECT_EQ(plan::choose_prompt_chunk(kTwoEqual, 10), 5);
  // Without a cost per chunk, one token at a time fills the pipeline soonest.
  EXPECT_EQ(plan::choose_prompt_chunk({{0, 1}, {0, 1}}, 10), 1);
  // A single resource gains nothing from chunks.
  EXPECT_EQ(plan::choose_prompt_chunk({{0.1, 0.1}}, 10), 10);
  // Nothing known: the whole prompt.
  EXPECT_EQ(plan::choose_prompt_chunk({}, 10), 10);
  EXPECT_EQ(plan::choose_prompt_chunk(kTwoEqual, 1), 1);
}

// embed, attn[0], ffn[0], head; every unit's output is 4096 bytes per token.
graph::Graph one_layer_graph() {
  graph::Graph g;
  g.tensors.push_back({"tokens", -1, 1, 4});
  std::string previous = "tokens";
  const model::Unit units[] = {{model::UnitKind::Embed, -1}, {model::UnitKind::Attention, 0},
                               {model::UnitKind::Ffn, 0}, {model::UnitKind::Head, -1}};
  for (int64_t i = 0; i < 4; ++i) {
    graph::GraphUnit u;
    u.unit = units[i];
    u.name = model::unit_name(u.unit);
    u.weight_bytes = 1 << 20;
    u.inputs = {previous};
    u.outputs = {u.name + ".out"};
    g.tensors.push_back({u.outputs[0], i, 1024, 4096});
    previous = u.outputs[0];
    g.units.push_back(std::move(u));
  }
  return g;
}

TEST(PromptChunk, StageCostsAreFittedThroughTheDecodeAndPromptTimingsAndTheLinkBetween) {
  std::vector<profile::DeviceProfile> devices(2);
  for (int d = 0; d < 2; ++d) {
    devices[d].name = d == 0 ? "a" : "b";
    devices[d].usable_memory_bytes = 1ull << 30;
    devices[d].prompt_chunk = 11;
    devices[d].decode_seconds.assign(4, 0.01);
    devices[d].prompt_seconds_per_token.assign(4, 0.002);
  }
  plan::CostOptions options;
  options.default_link = profile::LinkProfile{"", "", 2e-3, 1e8};
  auto cost = plan::CostModel::create(one_layer_graph(), devices, {}, options);
  ASSERT_TRUE(cost.ok()) << cost.error();
  const auto stages = plan::prompt_stage_costs(cost.value(), {{0, 2}, {2, 4}}, {0, 1});
  ASSERT_EQ(stages.size(), 3u) << "a, the link a -> b, b";
  // Per unit: one token in 0.01 s, 11 in 0.022 s: 0.0012 s a token and 0.0088 s a chunk.
  EXPECT_NEAR(stages[0].per_token_seconds, 2 * 0.0012, 1e-12);
  EXPECT_NEAR(stages[0].fixed_seconds, 2 * 0.0088, 1e-12);
  EXPECT_NEAR(stages[1].fixed_seconds, 1e-3, 1e-12);
  EXPECT_NEAR(stages[1].per_token_seconds, 4096 / 1e8, 1e-15);
  EXPECT_NEAR(stages[2].per_token_seconds, stages[0].per_token_seconds, 1e-12);
  // The same from the profiles, and nothing from profiles of other devices.
  const profile::ClusterProfile cluster{devices, {}};
  EXPECT_EQ(plan::prompt_stage_costs(one_layer_graph(), cluster, options, {{0, 2}, {2, 4}}, {0, 1}).size(), 3u);
  EXPECT_TRUE(plan::prompt_stage_costs(one_layer_graph(), cluster, options, {{0, 4}}, {0}).empty());
}

}  // namespace
}  // namespace ll
