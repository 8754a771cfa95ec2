// Split equivalence: a model run as 1..6 segments, cut anywhere (also between a layer's
// attention and its FFN), gives byte-identical logits and text to the unsplit run.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/thread_pool.h"
#include "exec/segment_executor.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "graph/shard.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_data.h"

namespace ll {
namespace {

constexpr int kDecodeSteps = 50;

struct Trace {
  std::vector<std::vector<float>> logits;  // after the prompt, then after each decode step
  std::vector<int32_t> tokens;             // greedy tokens
};

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// Runs the prompt as one chunk, then greedy decode steps, through the segments in order.
Trace run_pipeline(std::vector<exec::SegmentExecutor*> segments, const std::vector<int32_t>& prompt) {
  const int64_t n_embd = segments[0]->n_embd(), n_vocab = segments[0]->n_vocab();
  for (auto* s : segments) EXPECT_TRUE(s->create_sequence(7).ok());
  Trace t;
  std::vector<float> hidden(prompt.size() * n_embd), logits(n_vocab);
  auto step = [&](std::span<const int32_t> tokens, int64_t pos) {
    for (auto* s : segments) {
      Status st = s->forward(7, pos, tokens, hidden.data(), tokens.size(), logits.data());
      EXPECT_TRUE(st.ok()) << st.message();
    }
    t.logits.push_back(logits);
  };
  step(prompt, 0);
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (int i = 0; i < kDecodeSteps; ++i) {
    int32_t next = argmax(t.logits.back());
    t.tokens.push_back(next);
    step({&next, 1}, pos++);
  }
  for (auto* s : segments) s->free_sequence(7);
  return t;
}

void expect_identical(const Trace& a, const Trace& b, const std::string& what) {
  ASSERT_EQ(a.tokens, b.tokens) << what;
  ASSERT_EQ(a.logits.size(), b.logits.size());
  for (size_t i = 0; i < a.logits.size(); ++i) {
    ASSERT_EQ(0, std::memcmp(a.logits[i].data(), b.logits[i].data(), a.logits[i].size() * sizeof(float)))
        << what << ": logits differ at step " << i;
  }
}

// Every way to cut `n_units` units into 1..max_segments contiguous segments.
void for_each_cut_set(int64_t n_units, int max_segments, const std::function<void(const std::vector<int64_t>&)>& fn) {
  std::vector<int64_t> cuts;
  std::function<void(int64_t)> rec = [&](int64_t from) {
    fn(cuts);
    if (static_cast<int>(cuts.size()) + 1 >= max_segments) return;
    for (int64_t c = from; c < n_units; ++c) {
      cuts.push_back(c);
      rec(c + 1);
      cuts.pop_back();
    }
  };
  rec(1);
}

void check_every_split(const model::Model& m, const std::vector<int32_t>& prompt) {
  const graph::Graph g = graph::build_graph(m);
  exec::ExecOptions opts{.n_ctx = 128, .n_threads = 1};
  exec::SegmentExecutor whole(m, model::all_units(m.hparams()), opts);
  const Trace reference = run_pipeline({&whole}, prompt);
  int configurations = 0;
  for_each_cut_set(static_cast<int64_t>(g.units.size()), 6, [&](const std::vector<int64_t>& cuts) {
    auto p = graph::partition_from_cuts(g, cuts);
    ASSERT_TRUE(p.ok()) << p.error();
    std::vector<std::unique_ptr<exec::SegmentExecutor>> owned;
    std::vector<exec::SegmentExecutor*> segments;
    for (const auto& r : p->segments) {
      owned.push_back(std::make_unique<exec::SegmentExecutor>(m, r, opts));
      segments.push_back(owned.back().get());
    }
    expect_identical(reference, run_pipeline(segments, prompt), "cuts " + ::testing::PrintToString(cuts));
    ++configurations;
  });
  // sum over k = 1..6 of C(units - 1, k - 1)
  int64_t expected = 0, c = 1;
  for (int64_t k = 0; k < 6; ++k) {
    expected += c;
    c = c * (static_cast<int64_t>(g.units.size()) - 1 - k) / (k + 1);
  }
  EXPECT_EQ(configurations, expected);
}

TEST(SplitEquivalence, Stories260KEveryCutUpToSixSegments) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  check_every_split(*m.value(), {1, 403, 407, 261, 378, 300});
}

// Written once per test process; the vocabulary comes from the shared data.
Result<std::string> synthetic_model(const std::string& preset, const std::string& type) {
  const std::string path = test::temp_path(preset + "-" + type + ".gguf");
  if (!std::filesystem::exists(path)) {
    model::SynthOptions o{.preset = preset, .type = type,
                          .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
    ThreadPool pool(2);
    LL_RETURN_IF_ERROR(model::write_synthetic_model(o, path, pool));
  }
  return path;
}

TEST(SplitEquivalence, SyntheticFourLayersEveryCutUpToSixSegments) {
  auto path = synthetic_model("test-4l", "q4_0");
  ASSERT_TRUE(path.ok()) << path.error();
  auto m = model::Model::load(path.value());
  ASSERT_TRUE(m.ok()) << m.error();
  check_every_split(*m.value(), {1, 15043, 3186, 29892, 920});
}

TEST(SplitEquivalence, MultithreadedSegmentsEqualOneDevice) {
  auto path = synthetic_model("test-8l", "q4_k_m");
  ASSERT_TRUE(path.ok()) << path.error();
  auto m = model::Model::load(path.value());
  ASSERT_TRUE(m.ok()) << m.error();
  const auto& hp = m.value()->hparams();
  exec::SegmentExecutor whole(*m.value(), model::all_units(hp), {.n_ctx = 128, .n_threads = 2});
  const Trace reference = run_pipeline({&whole}, {1, 15043, 3186});
  exec::SegmentExecutor a(*m.value(), {0, 6}, {.n_ctx = 128, .n_threads = 2});
  exec::SegmentExecutor b(*m.value(), {6, 12}, {.n_ctx = 128, .n_threads = 2});
  exec::SegmentExecutor c(*m.value(), {12, model::unit_count(hp)}, {.n_ctx = 128, .n_threads = 2});
  expect_identical(reference, run_pipeline({&a, &b, &c}, {1, 15043, 3186}), "3 segments, 2 threads each");
}

TEST(Shards, ThreeShardsOfStories260KGiveTheSameText) {
  auto full = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(full.ok()) << full.error();
  const graph::Graph g = graph::build_graph(*full.value());
  auto p = graph::partition_from_cuts(g, {4, 8});  // cut after ffn[0]... and between attn/ffn
  ASSERT_TRUE(p.ok());
  const std::string dir = test::temp_path("shards260k");
  auto paths = graph::write_shards(*full.value(), g, p.value(), dir);
  ASSERT_TRUE(paths.ok()) << paths.error();
  ASSERT_EQ(paths->size(), 3u);

  std::vector<std::unique_ptr<model::Model>> shards;
  std::vector<std::unique_ptr<exec::SegmentExecutor>> owned;
  std::vector<exec::SegmentExecutor*> segments;
  for (size_t i = 0; i < 3; ++i) {
    auto s = model::Model::load(paths.value()[i]);
    ASSERT_TRUE(s.ok()) << s.error();
    EXPECT_EQ(s.value()->units().begin, p->segments[i].begin);
    EXPECT_EQ(s.value()->units().end, p->segments[i].end);
    EXPECT_EQ(s.value()->has_vocab(), i != 1) << "only the first and last shard carry the tokenizer";
    shards.push_back(std::move(s).value());
    owned.push_back(std::make_unique<exec::SegmentExecutor>(*shards.back(), p->segments[i],
                                                            exec::ExecOptions{.n_ctx = 128, .n_threads = 1}));
    segments.push_back(owned.back().get());
  }
  exec::SegmentExecutor whole(*full.value(), model::all_units(full.value()->hparams()), {.n_ctx = 128, .n_threads = 1});
  expect_identical(run_pipeline({&whole}, {1}), run_pipeline(segments, {1}), "3 shards");
  // A shard holds only its own tensors.
  auto first = gguf::GgufFile::open(paths.value()[0]);
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first.value()->find_tensor("token_embd.weight"), nullptr);
  EXPECT_EQ(first.value()->find_tensor("blk.4.attn_q.weight"), nullptr);
}

// `lingualinked split` prints the partition, then the files written: segment k of the
// printout must be the file named seg<k>of<n>, and that file must hold the printed units.
TEST(Shards, DescribedSegmentsNameTheFilesWritten) {
  auto full = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(full.ok()) << full.error();
  const graph::Graph g = graph::build_graph(*full.value());
  auto p = graph::partition_from_cuts(g, {4, 8});
  ASSERT_TRUE(p.ok());
  const std::string dir = test::temp_path("shards-named");
  auto paths = graph::write_shards(*full.value(), g, p.value(), dir);
  ASSERT_TRUE(paths.ok()) << paths.error();
  ASSERT_EQ(paths->size(), 3u);

  const std::string description = p->describe(g);
  EXPECT_EQ(description.substr(0, description.find("  ")),
            "segment 1: units 0..3 (embed .. attn[1])\n"
            "segment 2: units 4..7 (ffn[1] .. attn[3])\n"
            "segment 3: units 8..11 (ffn[3] .. head)\n");
  EXPECT_NE(description.find("  input -> segment 1: "), std::string::npos) << description;
  EXPECT_NE(description.find("  segment 1 -> segment 2: "), std::string::npos) << description;
  EXPECT_NE(description.find("  segment 2 -> segment 3: "), std::string::npos) << description;
  EXPECT_EQ(description.find("segment 0"), std::string::npos) << description;

  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(paths.value()[s], (std::filesystem::path(dir) / fmt::format("stories260K.seg{}of3.gguf", s + 1)).string());
    EXPECT_EQ(std::filesystem::path(paths.value()[s]).filename().string(),
              graph::shard_file_name("stories260K", s, 3));
    auto shard = model::Model::load(paths.value()[s]);
    ASSERT_TRUE(shard.ok()) << shard.error();
    EXPECT_EQ(shard.value()->file_units().begin, p->segments[s].begin);
    EXPECT_EQ(shard.value()->file_units().end, p->segments[s].end);
  }
}

TEST(Shards, ShardWithoutATensorIsRefused) {
  auto full = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(full.ok()) << full.error();
  const auto& f = full.value()->file();
  gguf::GgufWriter w;
  for (const auto& kv : f.metadata()) w.copy_kv(kv);
  w.set_uint32("llama.vocab_size", 512);
  w.set_uint32(model::kShardUnitBegin, 1);
  w.set_uint32(model::kShardUnitEnd, 3);
  for (const char* name : {"blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                           "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight",
                           "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"}) {
    const auto* t = f.find_tensor(name);
    w.add_tensor(t->name, t->type, t->dims, t->data, t->nbytes);
  }
  const std::string path = test::temp_path("missing.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto s = model::Model::load(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("missing tensor 'blk.0.attn_v.weight'"), std::string::npos) << s.error();

  // Mismatched: attn_v with the wrong shape.
  const auto* q = f.find_tensor("blk.0.attn_q.weight");
  w.add_tensor("blk.0.attn_v.weight", q->type, q->dims, q->data, q->nbytes);
  ASSERT_TRUE(w.write(path).ok());
  s = model::Model::load(path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("tensor 'blk.0.attn_v.weight' has shape [64, 64], expected [64, 32]"), std::string::npos)
      << s.error();
}

TEST(Shards, UnitsOutsideTheShardAreRefused) {
  auto full = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(full.ok()) << full.error();
  const graph::Graph g = graph::build_graph(*full.value());
  auto p = graph::partition_from_cuts(g, {6});
  ASSERT_TRUE(p.ok());
  auto paths = graph::write_shards(*full.value(), g, p.value(), test::temp_path("shards2"));
  ASSERT_TRUE(paths.ok()) << paths.error();
  model::LoadOptions all_units;
  all_units.units = model::UnitRange{0, 12};
  auto s = model::Model::load(paths.value()[1], all_units);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("holds units 6..11, but units 0..11 were asked for"), std::string::npos) << s.error();
}

// Generation runs every unit; a shard loaded for it is an error that says what the file is.
TEST(Shards, AShardIsNotAWholeModel) {
  auto full = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(full.ok()) << full.error();
  const graph::Graph g = graph::build_graph(*full.value());
  auto p = graph::partition_from_cuts(g, {3});
  ASSERT_TRUE(p.ok());
  auto paths = graph::write_shards(*full.value(), g, p.value(), test::temp_path("shards-whole"));
  ASSERT_TRUE(paths.ok()) << paths.error();
  model::LoadOptions whole;
  whole.whole_model = true;
  for (const std::string& path : paths.value()) {
    auto s = model::Model::load(path, whole);
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_NE(s.error().find("is a shard holding units"), std::string::npos) << s.error();
  }
  auto first = model::Model::load(paths.value()[0], whole);
  EXPECT_NE(first.error().find("units 0..2 (embed to ffn[0]) of 12, not a whole model"), std::string::npos)
      << first.error();
  auto shard = model::Model::load(paths.value()[1]);
  ASSERT_TRUE(shard.ok()) << shard.error();
  EXPECT_TRUE(shard.value()->is_shard());
  EXPECT_FALSE(full.value()->is_shard());
  EXPECT_TRUE(model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"), whole).ok());
}

}  // namespace
}  // namespace ll
