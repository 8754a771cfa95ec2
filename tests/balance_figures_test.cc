// The benchmark figures of a run around one change of speed, on traces made by hand.
#include "cluster/balance_figures.h"

#include <gtest/gtest.h>

namespace ll::cluster {
namespace {

TokenTrace token(double seconds, size_t request = 0) { return {seconds, request, {{0, 0.01, 0.001}}}; }

RebalanceEvent rebalance(double switched, double stall, bool aborted) {
  RebalanceEvent r;
  r.decided_seconds = switched - 0.2;
  r.switched_seconds = switched;
  r.stall_seconds = stall;
  r.aborted = aborted;
  return r;
}

// Request 0 at 10 tokens/s until the change at 2 s, then 4 tokens/s with a 0.5 s hole around a
// switch; request 1 adds two tokens 0.1 s apart in the first part.
RunTrace slowed_run() {
  RunTrace trace;
  for (int k = 1; k <= 20; ++k) trace.tokens.push_back(token(k / 10.0));
  trace.tokens.insert(trace.tokens.begin() + 10, {token(1.05, 1), token(1.15, 1)});
  for (double s : {2.25, 2.5, 2.75, 3.25, 3.5, 3.75, 4.0}) trace.tokens.push_back(token(s));
  trace.rebalances = {rebalance(1.0, 0.05, false), rebalance(2.5, 0.4, true), rebalance(3.2, 0.3, false)};
  return trace;
}

TEST(BalanceFigures, SpeedsAroundTheChangeSwitchesAndStalls) {
  const BalanceFigures f = balance_figures(slowed_run(), 2.0);
  // Before: (0.1 s, 2 s] holds 19 + 2 tokens. After: (2 s, 4 s] holds 7.
  ASSERT_TRUE(f.tokens_per_second_before.has_value());
  EXPECT_DOUBLE_EQ(*f.tokens_per_second_before, 21 / 1.9);
  ASSERT_TRUE(f.tokens_per_second_after.has_value());
  EXPECT_DOUBLE_EQ(*f.tokens_per_second_after, 7 / 2.0);
  EXPECT_EQ(f.rebalances, 2u);  // the one given up is not counted
  ASSERT_TRUE(f.seconds_to_first_switch.has_value());
  EXPECT_DOUBLE_EQ(*f.seconds_to_first_switch, 1.2);   // 3.2 s: the given-up attempt at 2.5 s did not switch
  EXPECT_DOUBLE_EQ(f.longest_stall_seconds, 0.4);      // the given-up attempt stalled too
  EXPECT_DOUBLE_EQ(f.longest_token_gap_seconds, 0.5);  // 2.75 s -> 3.25 s; request 1's tokens do not split it
}

TEST(BalanceFigures, ChangeOutsideTheTokensLeavesOneSideEmpty) {
  const RunTrace trace = slowed_run();
  const BalanceFigures late = balance_figures(trace, 9.0);
  EXPECT_FALSE(late.tokens_per_second_after.has_value());
  ASSERT_TRUE(late.tokens_per_second_before.has_value());
  EXPECT_DOUBLE_EQ(*late.tokens_per_second_before, 28 / 3.9);
  EXPECT_FALSE(late.seconds_to_first_switch.has_value());

  const BalanceFigures early = balance_figures(trace, 0.0);
  EXPECT_FALSE(early.tokens_per_second_before.has_value());
  ASSERT_TRUE(early.tokens_per_second_after.has_value());
  EXPECT_DOUBLE_EQ(*early.tokens_per_second_after, 28 / 3.9);  // from the first token on
  EXPECT_DOUBLE_EQ(*early.seconds_to_first_switch, 1.0);
}

TEST(BalanceFigures, EmptyTraceHasNoSpeeds) {
  const BalanceFigures f = balance_figures(RunTrace{}, 1.0);
  EXPECT_FALSE(f.tokens_per_second_before.has_value());
  EXPECT_FALSE(f.tokens_per_second_after.has_value());
  EXPECT_FALSE(f.seconds_to_first_switch.has_value());
  EXPECT_EQ(f.rebalances, 0u);
  EXPECT_EQ(f.longest_stall_seconds, 0);
  EXPECT_EQ(f.longest_token_gap_seconds, 0);
}

}  // namespace
}  // namespace ll::cluster
