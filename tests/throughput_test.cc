// Steady-state generation speed of sequences that shared a pipeline.
#include "cluster/throughput.h"

#include <gtest/gtest.h>

namespace ll {
namespace {

cluster::Generation tokens_at(std::vector<double> seconds) {
  cluster::Generation g;
  g.token_seconds = std::move(seconds);
  g.tokens.assign(g.token_seconds.size(), 1);
  return g;
}

TEST(SteadyGenerationTps, OneSequenceIsItsTokensAfterTheFirstOverItsDecodeTime) {
  auto tps = cluster::steady_generation_tps({tokens_at({1.0, 1.5, 2.0, 2.5, 3.0})});
  ASSERT_TRUE(tps.ok()) << tps.error();
  EXPECT_DOUBLE_EQ(tps.value(), 4 / 2.0);
}

TEST(SteadyGenerationTps, CountsOnlyWhileEverySequenceGenerates) {
  // Sequence a starts at 1 s while b's prompt still runs until 2 s; a ends at 5 s, b at 6 s.
  // From 2 to 5 s: a's tokens at 2.5 .. 5 (6) and b's at 2.5 .. 5 (6).
  auto a = tokens_at({1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0});
  auto b = tokens_at({2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0});
  auto tps = cluster::steady_generation_tps({a, b});
  ASSERT_TRUE(tps.ok()) << tps.error();
  EXPECT_DOUBLE_EQ(tps.value(), 12 / 3.0);
  // A sequence starting 2 s after a: only 3 .. 5 s counts, 4 tokens of each.
  auto late = tokens_at({3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0});
  auto steady = cluster::steady_generation_tps({a, late});
  ASSERT_TRUE(steady.ok()) << steady.error();
  EXPECT_DOUBLE_EQ(steady.value(), (4 + 4) / 2.0);
}

TEST(SteadyGenerationTps, SaysWhyWhenThereIsNothingToMeasure) {
  auto empty = cluster::steady_generation_tps({});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().find("no sequences"), std::string::npos);
  auto short_one = cluster::steady_generation_tps({tokens_at({1.0, 2.0}), tokens_at({1.5})});
  ASSERT_FALSE(short_one.ok());
  EXPECT_NE(short_one.error().find("fewer than 2 tokens"), std::string::npos) << short_one.error();
  auto apart = cluster::steady_generation_tps({tokens_at({1.0, 2.0}), tokens_at({3.0, 4.0})});
  ASSERT_FALSE(apart.ok());
  EXPECT_NE(apart.error().find("never generated at the same time"), std::string::npos) << apart.error();
}

}  // namespace
}  // namespace ll
