// Perplexity by llama.cpp's procedure: stories260K on the shared story text gives llama.cpp's
// figures (reference/perplexity/README.md), and the procedure refuses what it cannot score.
#include "exec/perplexity.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "exec/score.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"
#include "text/tokenizer.h"

namespace ll {
namespace {

using test::shared_data;

// llama-perplexity's figures (reference/perplexity/README.md).
struct Reference {
  int64_t n_ctx;
  std::vector<double> running;
  double ppl, error;
};
const Reference kContext128{128, {3.4443, 3.8089, 3.6624, 3.6043, 3.9883, 4.0979, 4.0964, 4.0795, 4.2170, 4.2128, 4.2717},
                            4.2717, 0.27574};
const Reference kContext256{256, {4.1302, 3.7107, 4.0433, 4.1689, 4.0528}, 4.0528, 0.26626};

// `actual` rounds to `expected`, a figure llama-perplexity printed to 4 significant digits.
::testing::AssertionResult same_4_digits(double actual, double expected) {
  const double scale = std::pow(10.0, 3 - std::floor(std::log10(std::fabs(expected))));
  if (std::fabs(actual - expected) * scale <= 0.5 + 1e-9) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << actual << " is not " << expected << " to 4 significant digits";
}

class Stories260KPerplexity : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = model::Model::load(shared_data("models/stories260K/stories260K.gguf"));
    ASSERT_TRUE(m.ok()) << m.error();
    model_ = std::move(m).value();
    auto tok = text::Tokenizer::create(model_->vocab());
    ASSERT_TRUE(tok.ok()) << tok.error();
    std::string text;
    ASSERT_NO_FATAL_FAILURE(text = test::read_text(shared_data("reference/perplexity/stories.txt")));
    tokens_ = tok->encode(text, model_->vocab().add_bos);
    ASSERT_TRUE(model_->vocab().add_bos);
  }

  // Over the first `n_tokens` of the text (default: all).
  Result<exec::PerplexityResult> compute(int64_t n_ctx, int64_t n_batch, size_t n_tokens = SIZE_MAX) {
    exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()), {.n_ctx = n_ctx, .n_threads = 2, .kv_types = test::kReferenceKvTypes});
    const std::span<const int32_t> tokens(tokens_.data(), std::min(n_tokens, tokens_.size()));
    return exec::perplexity(tokens, model_->vocab().bos, {.n_ctx = n_ctx, .n_batch = n_batch},
                            exec::score_on_device(ex, n_batch));
  }

  void expect_reference(const Reference& ref, int64_t n_batch) {
    auto r = compute(ref.n_ctx, n_batch);
    ASSERT_TRUE(r.ok()) << r.error();
    ASSERT_EQ(r->running.size(), ref.running.size());
    for (size_t i = 0; i < ref.running.size(); ++i) {
      EXPECT_TRUE(same_4_digits(r->running[i], ref.running[i])) << "after chunk " << i + 1;
    }
    EXPECT_TRUE(same_4_digits(r->ppl, ref.ppl));
    EXPECT_TRUE(same_4_digits(r->ppl_error, ref.error));
    EXPECT_EQ(r->scored, static_cast<int64_t>(ref.running.size()) * (ref.n_ctx - 1 - ref.n_ctx / 2));
  }

  std::unique_ptr<model::Model> model_;
  std::vector<int32_t> tokens_;
};

TEST_F(Stories260KPerplexity, Context128EqualsLlamaCpp) { expect_reference(kContext128, 128); }

TEST_F(Stories260KPerplexity, Context256EqualsLlamaCpp) { expect_reference(kContext256, 256); }

TEST_F(Stories260KPerplexity, BatchesBelowTheContextGiveTheSameFigures) {
  auto whole = compute(128, 128, 3 * 128);
  auto split = compute(128, 48, 3 * 128);  // passes of 48, 48 and 32 tokens per chunk
  ASSERT_TRUE(whole.ok() && split.ok());
  ASSERT_EQ(whole->running.size(), split->running.size());
  for (size_t i = 0; i < whole->running.size(); ++i) EXPECT_NEAR(split->running[i], whole->running[i], 1e-5);
}

TEST_F(Stories260KPerplexity, SeveralChunksAPassGiveTheSameFigures) {
  auto one = compute(128, 128, 5 * 128);
  auto four = compute(128, 512, 5 * 128);  // four chunks, then one
  ASSERT_TRUE(one.ok() && four.ok());
  EXPECT_EQ(four->running, one->running);
  EXPECT_EQ(four->ppl_error, one->ppl_error);
}

TEST_F(Stories260KPerplexity, TheTextMustHoldTwoContexts) {
  const std::vector<int32_t> short_text(tokens_.begin(), tokens_.begin() + 255);
  exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()), {.n_ctx = 128, .n_threads = 1, .kv_types = test::kReferenceKvTypes});
  auto r = exec::perplexity(short_text, 1, {.n_ctx = 128, .n_batch = 128}, exec::score_on_device(ex, 128));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "the text tokenizes to only 255 tokens, but a context of 128 needs at least 2*128 = 256 tokens; "
                       "give a longer text or a smaller -c");
}

TEST(Perplexity, ChunksStartWithBosAndOnlyTheirSecondHalfCounts) {
  // 9 tokens, chunks of 4: two chunks, the last token left out; positions 2 of each chunk scored.
  const std::vector<int32_t> tokens = {1, 10, 11, 12, 13, 14, 15, 16, 17};
  std::vector<std::vector<int32_t>> seen;
  const exec::ScoreChunks score = [&](const std::vector<std::vector<int32_t>>& chunks) {
    seen.insert(seen.end(), chunks.begin(), chunks.end());
    std::vector<std::vector<float>> out;
    for (size_t c = 0; c < chunks.size(); ++c) out.push_back({-9.0f, -9.0f, seen.size() == 1 ? -1.0f : -3.0f});
    return Result<std::vector<std::vector<float>>>(out);
  };
  std::vector<double> reported;
  auto r = exec::perplexity(tokens, 1, {.n_ctx = 4, .n_batch = 4}, score, [&](size_t k, double ppl) {
    EXPECT_EQ(k, reported.size() + 1);
    reported.push_back(ppl);
  });
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(seen, (std::vector<std::vector<int32_t>>{{1, 10, 11, 12}, {1, 14, 15, 16}}));
  EXPECT_EQ(r->scored, 2);
  EXPECT_EQ(reported, r->running);
  ASSERT_EQ(r->running.size(), 2u);
  EXPECT_DOUBLE_EQ(r->running[0], std::exp(1.0));
  EXPECT_DOUBLE_EQ(r->running[1], std::exp(2.0));
  EXPECT_DOUBLE_EQ(r->ppl, std::exp(2.0));
  // NLLs 1 and 3: variance 1, standard error sqrt(1 / (2 - 1)) times the figure.
  EXPECT_DOUBLE_EQ(r->ppl_error, std::exp(2.0));
}

TEST(Perplexity, WithoutBosTheChunksKeepTheirFirstToken) {
  const std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15};
  std::vector<std::vector<int32_t>> seen;
  const exec::ScoreChunks score = [&](const std::vector<std::vector<int32_t>>& chunks) {
    seen.insert(seen.end(), chunks.begin(), chunks.end());
    return Result<std::vector<std::vector<float>>>(std::vector<std::vector<float>>(chunks.size(), {-1, -1}));
  };
  auto r = exec::perplexity(tokens, std::nullopt, {.n_ctx = 3, .n_batch = 6}, score);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(seen, (std::vector<std::vector<int32_t>>{{10, 11, 12}, {13, 14, 15}}));
}

TEST(Perplexity, RefusesContextsThatScoreNothing) {
  for (int64_t n_ctx : {-1, 0, 1, 2}) {
    EXPECT_EQ(exec::validate_perplexity_context(n_ctx, 1000).message(),
              fmt::format("a context of {} tokens cannot be scored: -c must be 3..1000 (the second half of each "
                          "chunk is scored, given the first)",
                          n_ctx));
  }
  EXPECT_FALSE(exec::validate_perplexity_context(1001, 1000).ok());
  EXPECT_TRUE(exec::validate_perplexity_context(3, 1000).ok());
}

TEST(Perplexity, RefusesAScorerThatAnswersWithTheWrongShape) {
  const std::vector<int32_t> tokens(8, 5);
  const exec::ScoreChunks too_few = [](const std::vector<std::vector<int32_t>>& chunks) {
    return Result<std::vector<std::vector<float>>>(std::vector<std::vector<float>>(chunks.size(), {-1, -1}));
  };
  auto r = exec::perplexity(tokens, 1, {.n_ctx = 4, .n_batch = 4}, too_few);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "a chunk of 4 tokens came back with 2 scores instead of 3");
  const exec::ScoreChunks failing = [](const std::vector<std::vector<int32_t>>&) {
    return Result<std::vector<std::vector<float>>>(Status::Error("worker 2 is gone"));
  };
  r = exec::perplexity(tokens, 1, {.n_ctx = 4, .n_batch = 4}, failing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), "worker 2 is gone");
}

TEST(Perplexity, ChunksPerPassFollowTheBatch) {
  EXPECT_EQ(exec::chunks_per_pass({.n_ctx = 128, .n_batch = 64}), 1);
  EXPECT_EQ(exec::chunks_per_pass({.n_ctx = 128, .n_batch = 128}), 1);
  EXPECT_EQ(exec::chunks_per_pass({.n_ctx = 128, .n_batch = 2048}), 16);
  EXPECT_EQ(exec::chunks_per_pass({.n_ctx = 3, .n_batch = 1 << 30}), 64);
}

}  // namespace
}  // namespace ll
