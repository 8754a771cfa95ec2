// The data-dependency map of a partition.
#include <gtest/gtest.h>

#include "graph/partition.h"
#include "model/model.h"
#include "test_data.h"

namespace ll::graph {
namespace {

GraphUnit unit(const std::string& name, std::vector<std::string> in, std::vector<std::string> out) {
  GraphUnit u;
  u.name = name;
  u.unit = {model::UnitKind::Ffn, 0};
  u.inputs = std::move(in);
  u.outputs = std::move(out);
  return u;
}

// u0 -> u1 -> ... -> u5, plus a skip edge: u1's "skip" is read by u5.
Graph skip_graph() {
  Graph g;
  g.units = {unit("u0", {"in"}, {"a"}),  unit("u1", {"a"}, {"b", "skip"}), unit("u2", {"b"}, {"c"}),
             unit("u3", {"c"}, {"d"}),   unit("u4", {"d"}, {"e"}),          unit("u5", {"e", "skip"}, {"out"})};
  g.tensors = {{"in", -1, 1, 4}, {"a", 0, 8, 32},  {"b", 1, 8, 32}, {"skip", 1, 16, 64},
               {"c", 2, 8, 32},  {"d", 3, 8, 32},  {"e", 4, 8, 32}, {"out", 5, 8, 32}};
  return g;
}

TEST(Partition, SkipTensorGoesStraightToItsConsumer) {
  auto p = partition_from_cuts(skip_graph(), {2, 3, 5});
  ASSERT_TRUE(p.ok()) << p.error();
  ASSERT_EQ(p->segments.size(), 4u);
  const Dependency* skip = nullptr;
  for (const auto& d : p->dependencies) {
    if (d.tensor == "skip") skip = &d;
  }
  ASSERT_NE(skip, nullptr);
  EXPECT_EQ(skip->producer_segment, 0);
  EXPECT_EQ(skip->consumer_segments, std::vector<int>{3});  // not relayed through segments 1 and 2
  EXPECT_EQ(skip->bytes_per_token, 64u);
  // Segment 1 neither receives nor sends the skip tensor.
  for (const auto* d : p->inputs_of(1)) EXPECT_NE(d->tensor, "skip");
  for (const auto* d : p->outputs_of(1)) EXPECT_NE(d->tensor, "skip");
  // The full map: in -> 0 (input), b: 0 -> 1, c: 1 -> 2, e: 2 -> 3, skip: 0 -> 3.
  std::vector<std::string> names;
  for (const auto& d : p->dependencies) names.push_back(d.tensor);
  EXPECT_EQ(names, (std::vector<std::string>{"in", "b", "skip", "c", "e"}));
}

TEST(Partition, TensorInsideOneSegmentDoesNotCross) {
  auto p = partition_from_cuts(skip_graph(), {1});  // u1..u5 together: the skip stays inside
  ASSERT_TRUE(p.ok());
  for (const auto& d : p->dependencies) EXPECT_NE(d.tensor, "skip");
  EXPECT_EQ(p->segments[1].begin, 1);
}

TEST(Partition, BadCutsAreRefused) {
  for (std::vector<int64_t> cuts : {std::vector<int64_t>{0}, {6}, {3, 3}, {4, 2}, {-1}}) {
    auto p = partition_from_cuts(skip_graph(), cuts);
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.error().find("invalid"), std::string::npos) << p.error();
  }
}

TEST(Partition, DescribeNamesEachSegmentsFile) {
  auto p = partition_from_cuts(skip_graph(), {3});
  ASSERT_TRUE(p.ok()) << p.error();
  const std::string text = p->describe(skip_graph(), {"dir/m.seg1of2.gguf", "dir/m.seg2of2.gguf"});
  EXPECT_NE(text.find("segment 1: units 0..2 (u0 .. u2) in dir/m.seg1of2.gguf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("segment 2: units 3..5 (u3 .. u5) in dir/m.seg2of2.gguf\n"), std::string::npos) << text;
  EXPECT_NE(p->describe(skip_graph()).find("segment 2: units 3..5 (u3 .. u5)\n"), std::string::npos);
}

TEST(Graph, Stories260KUnitsAndCosts) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const Graph g = build_graph(*m.value());
  ASSERT_EQ(g.units.size(), 12u);
  EXPECT_EQ(g.units[0].name, "embed");
  EXPECT_EQ(g.units[1].name, "attn[0]");
  EXPECT_EQ(g.units[2].name, "ffn[0]");
  EXPECT_EQ(g.units[11].name, "head");
  // attn: wq 64x64, wk 32x64, wv 32x64, wo 64x64 (F32) + norm 64
  EXPECT_EQ(g.units[1].weight_bytes, (64u * 64 * 2 + 32u * 64 * 2 + 64) * 4);
  EXPECT_DOUBLE_EQ(g.units[1].flops_fixed_per_token, 2.0 * (64 * 64 * 2 + 32 * 64 * 2));
  EXPECT_DOUBLE_EQ(g.units[1].flops_per_token_per_ctx, 4.0 * 8 * 8);
  EXPECT_EQ(g.units[1].kv_bytes_per_token, 2u * 32 * 2);  // the default F16 cache
  EXPECT_EQ(g.units[2].kv_bytes_per_token, 0u);
  EXPECT_DOUBLE_EQ(g.units[2].flops_fixed_per_token, 2.0 * 3 * 64 * 172);
  EXPECT_DOUBLE_EQ(g.units[11].flops_fixed_per_token, 2.0 * 64 * 512);
  EXPECT_EQ(g.units[3].inputs, std::vector<std::string>{"ffn[0].out"});
  // Prompt FLOPs: m tokens, the i-th attends to n_past + i positions.
  EXPECT_DOUBLE_EQ(g.units[1].prompt_flops(4, 10),
                   4 * g.units[1].flops_fixed_per_token + g.units[1].flops_per_token_per_ctx * (11 + 12 + 13 + 14));
  // Cutting between attn[2] and ffn[2] sends only that residual stream.
  auto p = partition_from_cuts(g, {6});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->dependencies.size(), 2u);  // tokens -> segment 0, attn[2].out -> segment 1
  EXPECT_EQ(p->dependencies[1].tensor, "attn[2].out");
  EXPECT_EQ(p->dependencies[1].bytes_per_token, 64u * 4);
}

TEST(Graph, CutsByNameAndEvenLayers) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const Graph g = build_graph(*m.value());
  auto cuts = parse_cuts(g, "attn[2],8");
  ASSERT_TRUE(cuts.ok());
  EXPECT_EQ(cuts.value(), (std::vector<int64_t>{5, 8}));
  EXPECT_FALSE(parse_cuts(g, "mlp[1]").ok());
  EXPECT_EQ(even_layer_cuts(g, 2), (std::vector<int64_t>{5}));  // layers 0-1 | 2-4
  EXPECT_EQ(even_layer_cuts(g, 5).size(), 4u);
}

TEST(Partition, FromCutsOrASegmentCount) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const Graph g = build_graph(*m.value());
  using Segments = std::vector<std::pair<int64_t, int64_t>>;
  auto ranges = [](const Partition& p) {
    Segments out;
    for (const auto& r : p.segments) out.emplace_back(r.begin, r.end);
    return out;
  };
  auto by_cuts = partition_from_cuts_or_count(g, "attn[2],8", 0);
  ASSERT_TRUE(by_cuts.ok()) << by_cuts.error();
  EXPECT_EQ(ranges(by_cuts.value()), (Segments{{0, 5}, {5, 8}, {8, 12}}));
  auto by_count = partition_from_cuts_or_count(g, "", 2);
  ASSERT_TRUE(by_count.ok()) << by_count.error();
  EXPECT_EQ(ranges(by_count.value()), (Segments{{0, 5}, {5, 12}}));
  auto cuts_win = partition_from_cuts_or_count(g, "3", 4);  // the cuts, when both are given
  ASSERT_TRUE(cuts_win.ok()) << cuts_win.error();
  EXPECT_EQ(ranges(cuts_win.value()), (Segments{{0, 3}, {3, 12}}));
  auto neither = partition_from_cuts_or_count(g, "", 0);
  ASSERT_FALSE(neither.ok());
  EXPECT_EQ(neither.error(), "give --cuts or --segments");
  auto bad_name = partition_from_cuts_or_count(g, "mlp[1]", 0);
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error(), parse_cuts(g, "mlp[1]").error());
  auto bad_order = partition_from_cuts_or_count(g, "8,5", 0);
  ASSERT_FALSE(bad_order.ok());
  EXPECT_EQ(bad_order.error(), partition_from_cuts(g, {8, 5}).error());
}

}  // namespace
}  // namespace ll::graph
