// Scoring a token sequence: log-softmax as llama.cpp computes it, and the same scores whatever
// the forward passes' size.
#include "exec/score.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

TEST(NextTokenLogProb, IsTheLogSoftmaxOfTheToken) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double log_sum = std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0);
  EXPECT_NEAR(exec::next_token_log_prob(logits, 2), -log_sum, 1e-7);
  EXPECT_NEAR(exec::next_token_log_prob(logits, 0), -2.0 - log_sum, 1e-7);
  // Large logits do not overflow: the maximum is taken out first.
  const std::vector<float> large = {1000.0f, 1000.0f};
  EXPECT_NEAR(exec::next_token_log_prob(large, 1), -std::log(2.0), 1e-7);
}

TEST(ScoreTokens, EqualsTheLogSoftmaxOfEveryPositionsLogitsInAnyBatch) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const model::Model& model = *m.value();
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 429, 287, 319, 324, 271, 400};
  const int64_t n = static_cast<int64_t>(tokens.size()), n_vocab = model.hparams().n_vocab;
  exec::SegmentExecutor ex(model, model::all_units(model.hparams()), {.n_ctx = 64, .n_threads = 1});

  ASSERT_TRUE(ex.create_sequence(0).ok());
  std::vector<float> hidden(static_cast<size_t>(n * ex.n_embd())), logits(static_cast<size_t>(n * n_vocab));
  ASSERT_TRUE(ex.forward(0, 0, tokens, hidden.data(), n, logits.data(), /*all_logits=*/true).ok());
  std::vector<float> expected;
  for (int64_t i = 0; i + 1 < n; ++i) {
    expected.push_back(static_cast<float>(exec::next_token_log_prob(
        std::span<const float>(logits.data() + i * n_vocab, static_cast<size_t>(n_vocab)), tokens[i + 1])));
  }
  ex.free_sequence(0);

  for (int64_t batch : {int64_t{1}, int64_t{4}, n}) {
    ASSERT_TRUE(ex.create_sequence(0).ok());
    auto scored = exec::score_tokens(ex, 0, 0, tokens, hidden.data(), batch);
    ASSERT_TRUE(scored.ok()) << scored.error();
    ASSERT_EQ(scored->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR((*scored)[i], expected[i], 1e-5) << "batch " << batch;
    ex.free_sequence(0);
  }
}

TEST(ScoreTokens, NeedsTheHead) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  exec::SegmentExecutor ex(*m.value(), model::UnitRange{0, 2}, {.n_ctx = 16, .n_threads = 1});
  ASSERT_TRUE(ex.create_sequence(0).ok());
  std::vector<float> hidden(static_cast<size_t>(2 * ex.n_embd()));
  const std::vector<int32_t> tokens = {1, 2};
  auto scored = exec::score_tokens(ex, 0, 0, tokens, hidden.data(), 2);
  ASSERT_FALSE(scored.ok());
  EXPECT_EQ(scored.error(), "scoring needs the segment that holds the model's head");
}

}  // namespace
}  // namespace ll
