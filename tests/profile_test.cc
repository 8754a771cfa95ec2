// Device profiles as data and as measurements, usable memory, and the cost model's numbers.
#include <gtest/gtest.h>

#include "graph/graph.h"
#include "plan/cost_model.h"
#include "core/system_memory.h"
#include "profile/measure.h"
#include "test_data.h"

namespace ll::plan {
namespace {

using namespace ll::profile;

DeviceProfile sample_profile() {
  DeviceProfile p;
  p.name = "phone";
  p.threads = 4;
  p.usable_memory_bytes = 3ull << 30;
  p.simd = "NEON";
  p.model = "stories260K";
  p.decode_context = 128;
  p.prompt_chunk = 32;
  p.decode_seconds = {1e-5, 2.5e-4, 3e-4, 1.25e-3};
  p.prompt_seconds_per_token = {1e-6, 2e-5, 3e-5, 1e-4};
  return p;
}

TEST(Profile, JsonRoundTrip) {
  ClusterProfile c;
  c.devices = {sample_profile(), sample_profile()};
  c.devices[1].name = "laptop";
  c.devices[1].weights_mapped = false;
  c.links = {{"phone", "laptop", 4e-3, 2.5e7}};
  auto back = cluster_profile_from_json(nlohmann::json::parse(to_json(c).dump()));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(to_json(back.value()), to_json(c));
  EXPECT_EQ(back->devices[0].decode_seconds, c.devices[0].decode_seconds);
  EXPECT_TRUE(back->devices[0].weights_mapped);
  EXPECT_FALSE(back->devices[1].weights_mapped);
  EXPECT_EQ(back->links[0].bandwidth_bytes_per_s, 2.5e7);

  // Profiles written before weights_mapped timed the file's mapping; a wrong type is refused.
  nlohmann::json older = to_json(sample_profile());
  older.erase("weights_mapped");
  auto old_profile = device_profile_from_json(older);
  ASSERT_TRUE(old_profile.ok()) << old_profile.error();
  EXPECT_TRUE(old_profile->weights_mapped);
  older["weights_mapped"] = "no";
  EXPECT_EQ(device_profile_from_json(older).error(), "device profile 'phone': field 'weights_mapped' has the wrong type");

  // A single device profile is a cluster of one.
  auto one = cluster_profile_from_json(to_json(sample_profile()));
  ASSERT_TRUE(one.ok()) << one.error();
  EXPECT_EQ(one->devices.size(), 1u);

  const std::string path = test::temp_path("cluster.json");
  ASSERT_TRUE(write_json_file(path, to_json(c)).ok());
  auto read = read_json_file(path);
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ(read.value(), to_json(c));
}

TEST(Profile, BadJsonIsRefusedWithTheReason) {
  auto j = to_json(sample_profile());
  j.erase("decode_seconds");
  auto r = device_profile_from_json(j);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("decode_seconds"), std::string::npos) << r.error();

  j = to_json(sample_profile());
  j["decode_seconds"] = {1.0, -2.0, 1.0, 1.0};
  EXPECT_FALSE(device_profile_from_json(j).ok());
  j = to_json(sample_profile());
  j["prompt_seconds_per_token"] = {1.0};
  EXPECT_FALSE(device_profile_from_json(j).ok());
  j = to_json(sample_profile());
  j["threads"] = "four";
  EXPECT_FALSE(device_profile_from_json(j).ok());

  EXPECT_FALSE(
      link_profile_from_json({{"from", "a"}, {"to", "b"}, {"rtt_seconds", 1e-3}, {"bandwidth_bytes_per_s", 0}}).ok());
  EXPECT_FALSE(cluster_profile_from_json(nlohmann::json::array()).ok());
  ClusterProfile twins;
  twins.devices = {sample_profile(), sample_profile()};
  EXPECT_FALSE(cluster_profile_from_json(to_json(twins)).ok());
  EXPECT_FALSE(read_json_file(test::temp_path("missing.json")).ok());
}

TEST(Profile, MeasuresEveryUnitOfStories260K) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  MeasureOptions o;
  o.name = "here";
  o.memory_limit_bytes = 8ull << 30;
  auto p = measure_device_profile(*m.value(), 1, 3, o);
  ASSERT_TRUE(p.ok()) << p.error();
  ASSERT_EQ(p->decode_seconds.size(), 12u);
  ASSERT_EQ(p->prompt_seconds_per_token.size(), 12u);
  for (size_t u = 0; u < 12; ++u) {
    EXPECT_GT(p->decode_seconds[u], 0) << u;
    EXPECT_GT(p->prompt_seconds_per_token[u], 0) << u;
  }
  EXPECT_GT(p->usable_memory_bytes, 0u);
  EXPECT_LE(p->usable_memory_bytes, 8ull << 30);
  EXPECT_EQ(p->name, "here");
  EXPECT_EQ(p->threads, 1);
  EXPECT_FALSE(p->simd.empty());
  // Layers of one shape share a measurement.
  EXPECT_EQ(p->decode_seconds[1], p->decode_seconds[3]);
  EXPECT_EQ(p->decode_seconds[2], p->decode_seconds[4]);
}

TEST(Profile, UsableMemory) {
  EXPECT_EQ(parse_mem_available("MemTotal:  100 kB\nMemFree:  50 kB\nMemAvailable:   2048 kB\n"), 2048u * 1024);
  EXPECT_FALSE(parse_mem_available("MemTotal: 100 kB\n").has_value());
  EXPECT_GT(usable_memory_bytes(), 0u);
  EXPECT_EQ(usable_memory_bytes(12345), 12345u);
  if (auto limit = cgroup_memory_limit()) {
    EXPECT_LE(usable_memory_bytes(), *limit);
  }
}

// embed -> attn[0] -> ffn[0] -> head with round numbers.
graph::Graph tiny_graph() {
  graph::Graph g;
  g.tensors = {{"tokens", -1, 1, 4},
               {"embed.out", 0, 64, 256},
               {"attn[0].out", 1, 64, 256},
               {"ffn[0].out", 2, 64, 256},
               {"logits", 3, 100, 400}};
  const model::Unit kinds[] = {{model::UnitKind::Embed, -1},
                               {model::UnitKind::Attention, 0},
                               {model::UnitKind::Ffn, 0},
                               {model::UnitKind::Head, -1}};
  const uint64_t weights[] = {1000, 2000, 3000, 4000};
  for (int i = 0; i < 4; ++i) {
    graph::GraphUnit u;
    u.unit = kinds[i];
    u.name = model::unit_name(u.unit);
    u.weight_bytes = weights[i];
    u.kv_bytes_per_token = i == 1 ? 16 : 0;
    u.flops_fixed_per_token = 1e6 * i;
    u.inputs = {g.tensors[i].name};
    u.outputs = {g.tensors[i + 1].name};
    g.units.push_back(u);
  }
  return g;
}

TEST(CostModel, HandMadeInstance) {
  const graph::Graph g = tiny_graph();
  DeviceProfile a, b;
  a.name = "a";
  a.decode_seconds = {0.001, 0.010, 0.020, 0.040};
  a.prompt_seconds_per_token = a.decode_seconds;
  a.usable_memory_bytes = 20000;
  b = a;
  b.name = "b";
  b.decode_seconds = {0.002, 0.020, 0.040, 0.080};
  b.usable_memory_bytes = 5000;
  CostOptions o;
  o.n_ctx = 100;
  o.n_parallel = 2;
  o.working_bytes = 500;
  // a -> b measured; b -> a falls back to the reverse direction.
  auto c = CostModel::create(g, {a, b}, {{"a", "b", 0.002, 1e6}}, o);
  ASSERT_TRUE(c.ok()) << c.error();

  EXPECT_EQ(c->memory_bytes(1), 2000u + 16u * 100 * 2);  // weights + KV x ctx x parallel
  EXPECT_EQ(c->memory_bytes(model::UnitRange{0, 4}), 10000u + 3200u);
  EXPECT_EQ(c->capacity_bytes(1), 4500u);
  EXPECT_EQ(c->cut_bytes(0), 256u);
  EXPECT_EQ(c->cut_bytes(2), 256u);
  EXPECT_EQ(c->return_bytes(), 4u);
  EXPECT_DOUBLE_EQ(c->cut_seconds(1, 0, 1), 256 / 1e6 + 0.001);  // bytes / bandwidth + rtt / 2
  EXPECT_DOUBLE_EQ(c->return_seconds(1, 0), 4 / 1e6 + 0.001);
  EXPECT_DOUBLE_EQ(c->return_seconds(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(c->compute_seconds(model::UnitRange{1, 3}, 1), 0.060);

  // a: embed, attn[0]; b: ffn[0], head.
  const std::vector<model::UnitRange> split = {{0, 2}, {2, 4}};
  ASSERT_TRUE(c->check_assignment(split).ok());
  const Evaluation e = c->evaluate(split);
  EXPECT_DOUBLE_EQ(e.stages[0].compute_seconds, 0.011);
  EXPECT_DOUBLE_EQ(e.stages[0].transfer_seconds, 256 / 1e6 + 0.001);
  EXPECT_EQ(e.stages[0].send_to, 1);
  EXPECT_DOUBLE_EQ(e.stages[1].compute_seconds, 0.120);
  EXPECT_DOUBLE_EQ(e.stages[1].transfer_seconds, 4 / 1e6 + 0.001);
  EXPECT_EQ(e.stages[1].send_to, 0);
  EXPECT_NEAR(e.latency_seconds, 0.011 + 0.001256 + 0.120 + 0.001004, 1e-12);
  EXPECT_NEAR(e.bottleneck_seconds, 0.121004, 1e-12);
  EXPECT_EQ(e.stages[0].memory_bytes, 1000u + 5200u + 500u);
  EXPECT_EQ(e.stages[1].memory_bytes, 7000u + 500u);
  EXPECT_FALSE(e.fits);  // b holds 7500 of 5000 bytes

  // One device alone: nothing to send.
  const Evaluation alone = c->evaluate({{0, 4}, {}});
  EXPECT_EQ(alone.stages[0].send_to, -1);
  EXPECT_DOUBLE_EQ(alone.latency_seconds, 0.071);
  EXPECT_TRUE(alone.fits);

  EXPECT_FALSE(c->check_assignment({{0, 2}, {3, 4}}).ok());
  EXPECT_FALSE(c->check_assignment({{0, 2}}).ok());
  EXPECT_FALSE(c->check_assignment({{2, 4}, {0, 2}}).ok());

  // Missing links and profiles of another model are errors.
  EXPECT_FALSE(CostModel::create(g, {a, b}, {}, o).ok());
  DeviceProfile other = b;
  other.decode_seconds.pop_back();
  EXPECT_FALSE(CostModel::create(g, {a, other}, {{"a", "b", 0.002, 1e6}}, o).ok());
}

TEST(CostModel, WorkingBuffersAndSyntheticProfiles) {
  model::HParams hp;
  hp.n_embd = 64;
  hp.n_head = 8;
  hp.head_dim = 8;
  hp.n_ff = 172;
  hp.n_vocab = 512;
  // 4 x (batch x (3 n_embd + 2 q_dim + 2 n_ff) + threads x n_ctx + n_vocab)
  EXPECT_EQ(working_buffer_bytes(hp, 256, 2, 32), 4u * (32 * (192 + 128 + 344) + 512 + 512));

  const graph::Graph g = tiny_graph();
  const DeviceProfile p = synthetic_profile(g, 1e9, 1e9, 1 << 20, "what-if");
  ASSERT_EQ(p.decode_seconds.size(), 4u);
  EXPECT_EQ(p.decode_seconds[0], 0.0);               // the embedding is a lookup
  EXPECT_DOUBLE_EQ(p.decode_seconds[2], 2e6 / 1e9);  // 2 MFLOP beats 3000 bytes
  EXPECT_EQ(p.usable_memory_bytes, 1u << 20);
}

}  // namespace
}  // namespace ll::plan
