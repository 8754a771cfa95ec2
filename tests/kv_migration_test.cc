// Moving a boundary while a sequence generates: the new segments adopt the old ones' sequences,
// the KV of moved attention units goes through export_kv/import_kv and the sampler through
// state()/restore(); the continued run gives bit-identical logits and the same sampled tokens.
#include <gtest/gtest.h>

#include <cstring>

#include "exec/segment_executor.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "model/model.h"
#include "text/sampler.h"
#include "test_data.h"

namespace ll {
namespace {

constexpr int kSteps = 24, kMoveAfter = 10;
constexpr exec::SeqId kSeq = 3;
const exec::ExecOptions kOpts{.n_ctx = 64, .n_threads = 1};
const text::SamplerParams kParams{.temp = 0.9f, .top_k = 20, .top_p = 0.9f, .min_p = 0.0f,
                                  .repeat_penalty = 1.3f, .repeat_last_n = 8, .seed = 42};

struct Trace {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> tokens;
};

using Segments = std::vector<std::unique_ptr<exec::SegmentExecutor>>;

Segments make_segments(const model::Model& m, const std::vector<int64_t>& cuts) {
  auto p = graph::partition_from_cuts(graph::build_graph(m), cuts);
  EXPECT_TRUE(p.ok()) << p.error();
  Segments s;
  for (const auto& r : p->segments) s.push_back(std::make_unique<exec::SegmentExecutor>(m, r, kOpts));
  return s;
}

// The segments of `to_cuts`, each adopting the old segment at its index; every attention unit a
// new segment holds that its predecessor did not comes from the old segment that held it.
Segments migrate(const model::Model& m, const Segments& old, const std::vector<int64_t>& to_cuts) {
  Segments next = make_segments(m, to_cuts);
  for (size_t j = 0; j < next.size(); ++j) {
    exec::SegmentExecutor& to = *next[j];
    for (int64_t u = to.range().begin; u < to.range().end; ++u) {
      if (old[j]->range().contains(u) || model::unit_at(m.hparams(), u).kind != model::UnitKind::Attention) continue;
      for (const auto& from : old) {
        if (!from->range().contains(u)) continue;
        auto kv = from->export_kv(kSeq, u);
        EXPECT_TRUE(kv.ok()) << kv.error();
        Status st = to.import_kv(kSeq, u, from->sequence_length(kSeq), kv.value());
        EXPECT_TRUE(st.ok()) << st.message();
      }
    }
    Status st = to.adopt(*old[j]);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return next;
}

// Prompt, then sampled decode steps; after kMoveAfter steps the cuts become `to_cuts` (when given).
Trace run(const model::Model& m, const std::vector<int64_t>& cuts, std::optional<std::vector<int64_t>> to_cuts) {
  Segments segs = make_segments(m, cuts);
  for (auto& s : segs) EXPECT_TRUE(s->create_sequence(kSeq).ok());
  text::Sampler sampler(kParams, static_cast<int32_t>(m.hparams().n_vocab));
  std::vector<int32_t> tokens = {1, 403, 407};
  Trace t;
  std::vector<float> hidden(tokens.size() * m.hparams().n_embd), logits(m.hparams().n_vocab);
  int64_t pos = 0;
  for (int i = 0; i <= kSteps; ++i) {
    if (i == kMoveAfter && to_cuts) {
      segs = migrate(m, segs, *to_cuts);
      sampler = text::Sampler::restore(sampler.state(), static_cast<int32_t>(m.hparams().n_vocab));
    }
    for (auto& s : segs) {
      Status st = s->forward(kSeq, pos, tokens, hidden.data(), static_cast<int64_t>(tokens.size()), logits.data());
      EXPECT_TRUE(st.ok()) << st.message();
    }
    pos += static_cast<int64_t>(tokens.size());
    t.logits.push_back(logits);
    for (int32_t tok : tokens) sampler.accept(tok);
    tokens = {sampler.sample(logits.data())};
    t.tokens.push_back(tokens[0]);
  }
  return t;
}

class KvMigration : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
    ASSERT_TRUE(m.ok()) << m.error();
    model_ = std::move(m).value();
  }
  void expect_same_as_unmoved(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
    const Trace reference = run(*model_, from, std::nullopt);
    const Trace moved = run(*model_, from, to);
    ASSERT_EQ(reference.tokens, moved.tokens);
    for (size_t i = 0; i < reference.logits.size(); ++i) {
      ASSERT_EQ(0, std::memcmp(reference.logits[i].data(), moved.logits[i].data(),
                               reference.logits[i].size() * sizeof(float)))
          << "logits differ at step " << i;
    }
  }
  std::unique_ptr<model::Model> model_;
};

// stories260K: 12 units, embed · attn[0] ffn[0] · ... · attn[4] ffn[4] · head.
TEST_F(KvMigration, BoundaryMovedInsideALayerContinuesBitIdentically) { expect_same_as_unmoved({5}, {4}); }
TEST_F(KvMigration, BoundaryMovedBetweenLayersContinuesBitIdentically) { expect_same_as_unmoved({3}, {7}); }
TEST_F(KvMigration, SeveralBoundariesMovedAtOnceContinueBitIdentically) { expect_same_as_unmoved({2, 9}, {6, 11}); }

TEST_F(KvMigration, ExportImportRoundTripsAndRefusesWhatDoesNotFit) {
  exec::SegmentExecutor a(*model_, {0, 4}, kOpts), b(*model_, {3, 12}, kOpts);
  ASSERT_TRUE(a.create_sequence(kSeq).ok());
  std::vector<int32_t> tokens = {1, 403};
  std::vector<float> hidden(2 * model_->hparams().n_embd);
  ASSERT_TRUE(a.forward(kSeq, 0, tokens, hidden.data(), 2, nullptr).ok());
  auto kv = a.export_kv(kSeq, 3);
  ASSERT_TRUE(kv.ok()) << kv.error();
  EXPECT_EQ(kv->size(), static_cast<size_t>(2 * 2 * model_->hparams().kv_dim()) * 2);  // F16 K and V rows
  ASSERT_TRUE(b.import_kv(kSeq, 3, 2, kv.value()).ok());
  EXPECT_EQ(b.sequence_length(kSeq), 2);
  EXPECT_EQ(b.export_kv(kSeq, 3).value(), kv.value());

  EXPECT_NE(a.export_kv(kSeq, 2).error().find("unit 2 is not an attention unit of this segment"), std::string::npos);
  EXPECT_NE(a.export_kv(99, 1).error().find("unknown sequence 99"), std::string::npos);
  EXPECT_NE(b.import_kv(kSeq, 5, 3, std::vector<uint8_t>(3 * 2 * model_->hparams().kv_dim() * 2)).message().find(
                "sequence 3 has 2 positions here, not 3"),
            std::string::npos);
  EXPECT_NE(b.import_kv(kSeq, 5, 2, std::vector<uint8_t>(7)).message().find("must be"), std::string::npos);
  EXPECT_NE(b.import_kv(kSeq, 1, 2, kv.value()).message().find("not an attention unit"), std::string::npos);
  EXPECT_NE(b.import_kv(8, 5, 65, std::vector<uint8_t>(65 * 2 * model_->hparams().kv_dim() * 2)).message().find(
                "does not fit a context of 64"),
            std::string::npos);
  // adopt: a sequence imported with another length than the adopted one's is refused.
  exec::SegmentExecutor c(*model_, {0, 4}, kOpts);
  ASSERT_TRUE(c.import_kv(kSeq, 1, 1, std::vector<uint8_t>(2 * model_->hparams().kv_dim() * 2)).ok());
  EXPECT_NE(c.adopt(a).message().find("sequence 3 has 1 positions here, not 2"), std::string::npos);
}

TEST(SamplerState, RestoredSamplerDrawsWhatTheOriginalDraws) {
  const text::SamplerParams params{.temp = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                                   .repeat_penalty = 1.5f, .repeat_last_n = 3, .seed = 7};
  text::Sampler a(params, 16);
  for (int32_t t : {1, 2, 3, 4, 5}) a.accept(t);
  std::vector<float> logits(16);
  for (int i = 0; i < 16; ++i) logits[i] = static_cast<float>(i % 5);
  std::vector<float> scratch = logits;
  a.sample(scratch.data());  // advance the generator
  const text::SamplerState st = a.state();
  EXPECT_EQ(st.recent, (std::vector<int32_t>{3, 4, 5}));
  text::Sampler b = text::Sampler::restore(st, 16);
  for (int i = 0; i < 50; ++i) {
    std::vector<float> la = logits, lb = logits;
    const int32_t ta = a.sample(la.data()), tb = b.sample(lb.data());
    ASSERT_EQ(ta, tb) << "draw " << i;
    a.accept(ta);
    b.accept(tb);
  }
}

}  // namespace
}  // namespace ll
