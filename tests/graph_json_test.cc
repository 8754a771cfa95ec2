// The graph as JSON: every unit with its costs and edges, every tensor with its producer.
#include <gtest/gtest.h>

#include "graph/graph_json.h"
#include "model/model.h"
#include "test_data.h"

namespace ll::graph {
namespace {

TEST(GraphJson, HoldsEveryUnitAndTensorWithTheirCosts) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const Graph g = build_graph(*m.value());
  const nlohmann::json j = to_json(g, 256);

  EXPECT_EQ(j["context_for_decode_flops"], 256);
  ASSERT_EQ(j["units"].size(), g.units.size());
  ASSERT_EQ(j["tensors"].size(), g.tensors.size());
  for (size_t i = 0; i < g.units.size(); ++i) {
    const auto& u = j["units"][i];
    EXPECT_EQ(u["index"], i);
    EXPECT_EQ(u["name"], g.units[i].name);
    EXPECT_EQ(u["weight_bytes"], g.units[i].weight_bytes);
    EXPECT_EQ(u["kv_bytes_per_token"], g.units[i].kv_bytes_per_token);
    EXPECT_DOUBLE_EQ(u["flops_decode"].get<double>(), g.units[i].decode_flops(256));
    EXPECT_DOUBLE_EQ(u["flops_prompt_64"].get<double>(), g.units[i].prompt_flops(64, 0));
    EXPECT_EQ(u["inputs"].get<std::vector<std::string>>(), g.units[i].inputs);
    EXPECT_EQ(u["outputs"].get<std::vector<std::string>>(), g.units[i].outputs);
    uint64_t weight_bytes = 0;
    for (const auto& w : u["weights"]) weight_bytes += w["bytes"].get<uint64_t>();
    EXPECT_EQ(weight_bytes, g.units[i].weight_bytes) << g.units[i].name;
  }
  EXPECT_EQ(j["units"][0]["name"], "embed");
  EXPECT_EQ(j["units"][1]["kv_bytes_per_token"].get<uint64_t>(), 2u * 32 * 2);  // attn[0]: K and V, kv_dim 32, F16 (the default cache)
  EXPECT_EQ(j["tensors"][0]["name"], "tokens");
  EXPECT_EQ(j["tensors"][0]["producer"], -1);
}

}  // namespace
}  // namespace ll::graph
