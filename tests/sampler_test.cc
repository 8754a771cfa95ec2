#include "text/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace ll::text {
namespace {

// Every filter off: a plain draw from softmax(logits / temp).
SamplerParams plain(float temp, uint64_t seed = 1) {
  SamplerParams p;
  p.temp = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

std::set<int32_t> ids_of(const std::vector<TokenProb>& c) {
  std::set<int32_t> ids;
  for (const auto& t : c) ids.insert(t.id);
  return ids;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> log_of(const std::vector<float>& probs) {
  std::vector<float> l;
  for (float p : probs) l.push_back(std::log(p));
  return l;
}

std::set<int32_t> survivors(SamplerParams params, std::vector<float> logits) {
  Sampler s(params, static_cast<int32_t>(logits.size()));
  return ids_of(s.candidates(logits.data()));
}

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler s(plain(0.0f), 4);
  std::vector<float> logits = {1, 3, 3, 2};
  EXPECT_EQ(s.sample(logits.data()), 1);
  SamplerParams negative = plain(-1.0f);
  negative.top_k = 1;
  Sampler t(negative, 4);
  logits = {1, 3, 4, 2};
  EXPECT_EQ(t.sample(logits.data()), 2);
}

// llama2.c's xorshift64* stream for seed 42: with 16 equal logits the multinomial draw picks
// floor(coin * 16), i.e. the top 4 bits of each 32-bit output.
TEST(Sampler, RngMatchesLlama2c) {
  Sampler s(plain(1.0f, 42), 16);
  std::vector<int32_t> got;
  for (int i = 0; i < 12; ++i) {
    std::vector<float> logits(16, 0.0f);
    got.push_back(s.sample(logits.data()));
  }
  EXPECT_EQ(got, (std::vector<int32_t>{5, 12, 12, 15, 12, 13, 3, 7, 4, 10, 6, 5}));
}

TEST(Sampler, SeededRunsReproduce) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<std::vector<float>> steps(50, std::vector<float>(300));
  for (auto& l : steps) std::generate(l.begin(), l.end(), [&] { return normal(gen); });

  auto run = [&](uint64_t seed) {
    SamplerParams p;  // the defaults: top-k, top-p, min-p and temperature all active
    p.seed = seed;
    p.repeat_penalty = 1.1f;
    Sampler s(p, 300);
    std::vector<int32_t> out;
    for (auto logits : steps) {
      out.push_back(s.sample(logits.data()));
      s.accept(out.back());
    }
    return out;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));
}

TEST(Sampler, SkippingDrawsContinuesWhereSamplingLeftOff) {
  // A sequence replayed after a device loss: a fresh sampler told how many tokens were drawn
  // continues the draws of the one that was lost.
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<std::vector<float>> steps(20, std::vector<float>(300));
  for (auto& l : steps) std::generate(l.begin(), l.end(), [&] { return normal(gen); });
  SamplerParams p;
  p.seed = 99;
  Sampler whole(p, 300);
  std::vector<int32_t> drawn;
  for (auto logits : steps) drawn.push_back(whole.sample(logits.data()));
  Sampler resumed(p, 300);
  resumed.skip_draws(12);
  for (size_t i = 12; i < steps.size(); ++i) {
    auto logits = steps[i];
    EXPECT_EQ(resumed.sample(logits.data()), drawn[i]) << "draw " << i;
  }
  SamplerParams greedy = p;
  greedy.temp = 0;
  Sampler g(greedy, 300);
  g.skip_draws(5);
  EXPECT_EQ(g.state().rng_state, greedy.seed);  // greedy sampling draws nothing, so there is nothing to skip
}

TEST(Sampler, CandidatesConsumeNoRandomness) {
  std::vector<float> logits = {0.1f, 0.4f, 0.2f, 0.3f};
  Sampler a(plain(1.0f, 99), 4), b(plain(1.0f, 99), 4);
  auto l1 = logits;
  a.candidates(l1.data());
  for (int i = 0; i < 20; ++i) {
    auto la = logits, lb = logits;
    EXPECT_EQ(a.sample(la.data()), b.sample(lb.data()));
  }
}

TEST(Sampler, TopK) {
  SamplerParams p = plain(1.0f);
  p.top_k = 2;
  std::vector<float> logits = {1, 5, 3, 4, 2};
  Sampler s(p, 5);
  const auto c = s.candidates(logits.data());
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
  EXPECT_NEAR(c[0].p, 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  p.top_k = 5;
  EXPECT_EQ(survivors(p, {1, 5, 3, 4, 2}).size(), 5u);
}

TEST(Sampler, TopP) {
  const auto logits = log_of({0.5f, 0.2f, 0.15f, 0.1f, 0.05f});
  SamplerParams p = plain(1.0f);
  p.top_p = 0.8f;
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0, 1, 2}));
  p.top_p = 0.6f;
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0, 1}));
  p.top_p = 0.4f;
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0}));
  p.top_p = 0.01f;  // smaller than every probability: still the most likely token
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0}));
  p.top_p = 1.0f;
  EXPECT_EQ(survivors(p, logits).size(), 5u);
}

TEST(Sampler, TopPJudgesTemperedProbabilities) {
  const auto logits = log_of({0.6f, 0.3f, 0.1f});
  SamplerParams p = plain(1.0f);
  p.top_p = 0.7f;
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0, 1}));
  p.temp = 0.5f;  // probabilities become about 0.79, 0.20, 0.02
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0}));
}

TEST(Sampler, MinP) {
  const auto logits = log_of({0.5f, 0.2f, 0.15f, 0.1f, 0.05f});
  SamplerParams p = plain(1.0f);
  p.min_p = 0.25f;  // keeps p >= 0.125
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.35f;  // keeps p >= 0.175
  EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{0, 1}));
}

TEST(Sampler, MinPAboveOneKeepsOnlyTheMostLikelyToken) {
  // Settings validate() refuses: the sampler itself must still draw from a non-empty list.
  const auto logits = log_of({0.2f, 0.5f, 0.3f});
  for (float min_p : {1.0f, 2.0f, 1e30f}) {
    SCOPED_TRACE(min_p);
    SamplerParams p = plain(1.0f, 5);
    p.min_p = min_p;
    EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{1}));
    p.top_p = 0.9f;
    EXPECT_EQ(survivors(p, logits), (std::set<int32_t>{1}));
    Sampler s(p, 3);
    for (int i = 0; i < 20; ++i) {
      std::vector<float> l = logits;
      EXPECT_EQ(s.sample(l.data()), 1);
    }
  }
}

TEST(Sampler, ValidateRefusesEverySettingOutsideItsRange) {
  const float nan = std::nanf(""), inf = INFINITY;
  struct Case {
    SamplerParams params;
    std::string error;
  };
  auto with = [](auto set) {
    SamplerParams p;
    set(p);
    return p;
  };
  const std::vector<Case> cases = {
      {with([&](SamplerParams& p) { p.temp = nan; }), "temperature nan is not a finite number"},
      {with([&](SamplerParams& p) { p.temp = inf; }), "temperature inf is not a finite number"},
      {with([](SamplerParams& p) { p.top_k = -1; }), "top-k -1 is negative"},
      {with([](SamplerParams& p) { p.top_p = 2; }), "top-p 2 is outside 0..1"},
      {with([](SamplerParams& p) { p.top_p = -0.5f; }), "top-p -0.5 is outside 0..1"},
      {with([&](SamplerParams& p) { p.top_p = nan; }), "top-p nan is outside 0..1"},
      {with([](SamplerParams& p) { p.min_p = 2; }), "min-p 2 is outside 0..1"},
      {with([&](SamplerParams& p) { p.min_p = nan; }), "min-p nan is outside 0..1"},
      {with([](SamplerParams& p) { p.repeat_penalty = 0; }), "repeat penalty 0 is not a finite number above 0"},
      {with([](SamplerParams& p) { p.repeat_penalty = -1; }), "repeat penalty -1 is not"},
      {with([&](SamplerParams& p) { p.repeat_penalty = inf; }), "repeat penalty inf is not"},
      {with([](SamplerParams& p) { p.repeat_last_n = -2; }), "repeat-last-n -2 is below -1"},
  };
  for (const Case& c : cases) {
    Status st = validate(c.params);
    ASSERT_FALSE(st.ok()) << c.error;
    EXPECT_NE(st.message().find(c.error), std::string::npos) << st.message();
  }
  // The edges of every range, and llama.cpp's "off" and "greedy" values.
  for (auto set : std::vector<void (*)(SamplerParams&)>{
           [](SamplerParams&) {}, [](SamplerParams& p) { p.temp = 0; }, [](SamplerParams& p) { p.temp = -1; },
           [](SamplerParams& p) { p.top_k = 0; }, [](SamplerParams& p) { p.top_p = 0; },
           [](SamplerParams& p) { p.top_p = 1; }, [](SamplerParams& p) { p.min_p = 0; },
           [](SamplerParams& p) { p.min_p = 1; }, [](SamplerParams& p) { p.repeat_last_n = -1; },
           [](SamplerParams& p) { p.repeat_last_n = 0; }}) {
    SamplerParams p;
    set(p);
    EXPECT_TRUE(validate(p).ok()) << validate(p).message();
  }
}

TEST(Sampler, RepetitionPenalty) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p, 4);
  s.accept(0);
  s.accept(1);
  s.accept(1);  // counted once
  std::vector<float> logits = {2, -1, 1.5f, 0.5f};
  EXPECT_EQ(s.sample(logits.data()), 0);  // 0 fell out of the window of 2
  EXPECT_EQ(logits, (std::vector<float>{2, -2, 1.5f, 0.5f}));

  Sampler t(p, 4);
  t.accept(0);
  t.accept(1);
  logits = {2, -1, 1.5f, 0.5f};
  EXPECT_EQ(t.sample(logits.data()), 2);
  EXPECT_EQ(logits, (std::vector<float>{1, -2, 1.5f, 0.5f}));
}

// Frequencies of many seeded draws against the distribution they come from.
void check_frequencies(SamplerParams p, const std::vector<float>& logits, const std::vector<double>& want) {
  constexpr int kDraws = 20000;
  Sampler s(p, static_cast<int32_t>(logits.size()));
  std::vector<int> count(logits.size());
  for (int i = 0; i < kDraws; ++i) {
    auto l = logits;
    ++count[s.sample(l.data())];
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const double freq = static_cast<double>(count[i]) / kDraws;
    const double sigma = std::sqrt(want[i] * (1 - want[i]) / kDraws);
    EXPECT_NEAR(freq, want[i], 5 * sigma + 1e-9) << "token " << i;
  }
}

TEST(Sampler, TemperatureFrequencies) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 0.5f};
  for (float temp : {0.5f, 1.0f, 2.0f}) {
    std::vector<double> want;
    double sum = 0;
    for (float l : logits) sum += std::exp(l / temp);
    for (float l : logits) want.push_back(std::exp(l / temp) / sum);
    SCOPED_TRACE(temp);
    check_frequencies(plain(temp, 2024), logits, want);
  }
}

TEST(Sampler, TruncatedFrequencies) {
  // top-k 3 removes token 0; top-p 0.7 over {0.5, 0.3, 0.2} (renormalized) keeps 2 and 1.
  SamplerParams p = plain(1.0f, 77);
  p.top_k = 3;
  p.top_p = 0.7f;
  check_frequencies(p, log_of({0.1f, 0.27f, 0.45f, 0.18f}), {0.0, 0.27 / 0.72, 0.45 / 0.72, 0.0});
}

}  // namespace
}  // namespace ll::text
