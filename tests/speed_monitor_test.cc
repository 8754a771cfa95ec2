// SpeedMonitor: the window (the longer of 1 s and 8 tokens), the median against noise, nothing
// known before a full window, resets, idle probes, links.
#include <gtest/gtest.h>

#include <cmath>

#include "cluster/speed_monitor.h"

namespace ll::cluster {
namespace {

TEST(Median, OddEvenAndEmpty) {
  EXPECT_EQ(median({3, 1, 2}), 2.0);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({}), std::nullopt);
}

TEST(SpeedMonitor, UnknownUntilEightTokensSpanningOneSecond) {
  SpeedMonitor m(1);
  // Slow tokens: 7 of them over 3 s are not yet 8 tokens.
  for (int i = 0; i < 7; ++i) m.add_compute(0, 0.5 * i, 0.2, 0.1);
  EXPECT_EQ(m.slowdown(0, 3.0), std::nullopt);
  m.add_compute(0, 3.5, 0.2, 0.1);
  EXPECT_EQ(m.slowdown(0, 3.5), 2.0);

  // Fast tokens: 20 within 0.2 s are not yet a second.
  SpeedMonitor fast(1);
  for (int i = 0; i < 20; ++i) fast.add_compute(0, 0.01 * i, 0.03, 0.01);
  EXPECT_EQ(fast.slowdown(0, 0.19), std::nullopt);
  for (int i = 20; i <= 100; ++i) fast.add_compute(0, 0.01 * i, 0.03, 0.01);
  ASSERT_TRUE(fast.slowdown(0, 1.0).has_value());
  EXPECT_NEAR(*fast.slowdown(0, 1.0), 3.0, 1e-12);
}

TEST(SpeedMonitor, OneNoisyTokenMovesNothing) {
  SpeedMonitor m(2);
  for (int i = 0; i < 40; ++i) {
    const double t = 0.05 * i;
    m.add_compute(0, t, i == 30 ? 1.0 : 0.1, 0.1);  // one token ten times slower
    m.add_compute(1, t, 0.1, 0.1);
  }
  EXPECT_EQ(m.slowdown(0, 1.95), 1.0);
  EXPECT_EQ(m.slowdowns(1.95), (std::vector<double>{1.0, 1.0}));
}

TEST(SpeedMonitor, TheWindowIsTheLastSecondWhenTokensAreFast) {
  SpeedMonitor m(1);
  double t = 0;
  for (int i = 0; i < 200; ++i, t += 0.01) m.add_compute(0, t, 0.01, 0.01);  // 2 s as profiled
  for (int i = 0; i < 60; ++i, t += 0.01) m.add_compute(0, t, 0.03, 0.01);   // then 0.6 s 3x slower
  // The last second holds 60 slow samples and 40 normal ones.
  EXPECT_NEAR(*m.slowdown(0, t - 0.01), 3.0, 1e-12);
}

TEST(SpeedMonitor, TheWindowIsTheLastEightTokensWhenTokensAreSlow) {
  SpeedMonitor m(1);
  double t = 0;
  for (int i = 0; i < 10; ++i, t += 0.5) m.add_compute(0, t, 1.0, 1.0);
  for (int i = 0; i < 5; ++i, t += 0.5) m.add_compute(0, t, 2.0, 1.0);
  // The last 8 tokens (3.5 s): 5 slow ones.
  EXPECT_EQ(m.slowdown(0, t - 0.5), 2.0);
}

TEST(SpeedMonitor, ResetNeedsAFreshWindow) {
  SpeedMonitor m(2);
  for (int i = 0; i < 30; ++i) {
    m.add_compute(0, 0.05 * i, 0.2, 0.1);
    m.add_compute(1, 0.05 * i, 0.1, 0.1);
  }
  ASSERT_EQ(m.slowdown(0, 1.45), 2.0);
  m.reset(0);
  EXPECT_EQ(m.slowdown(0, 1.45), std::nullopt);
  EXPECT_EQ(m.slowdown(1, 1.45), 1.0);
  EXPECT_EQ(m.slowdowns(1.45), std::nullopt);
  m.reset_all();
  EXPECT_EQ(m.slowdown(1, 1.45), std::nullopt);
  // After the reset the new placement's samples alone count.
  for (int i = 0; i < 30; ++i) m.add_compute(0, 2.0 + 0.05 * i, 0.05, 0.1);
  EXPECT_EQ(m.slowdown(0, 3.45), 0.5);
}

TEST(SpeedMonitor, AnIdleWorkerHasItsProbeUntilItsSamplesCoverAWindow) {
  SpeedMonitor m(2);
  EXPECT_EQ(m.slowdown(1, 0), std::nullopt);
  m.set_idle_probe(1, 1.8);
  EXPECT_EQ(m.slowdown(1, 0), 1.8);
  for (int i = 0; i < 5; ++i) m.add_compute(1, 0.1 * i, 0.1, 0.1);
  EXPECT_EQ(m.slowdown(1, 0.4), 1.8);
  for (int i = 5; i < 12; ++i) m.add_compute(1, 0.1 * i, 0.1, 0.1);
  EXPECT_EQ(m.slowdown(1, 1.1), 1.0);
  m.reset(1);
  EXPECT_EQ(m.slowdown(1, 1.1), std::nullopt);
  m.set_idle_probe(1, -1);  // not a factor: ignored
  m.set_idle_probe(7, 2.0);  // no such worker: ignored
  EXPECT_EQ(m.slowdown(1, 1.1), std::nullopt);
}

TEST(SpeedMonitor, SamplesThatMeanNothingAreIgnored) {
  SpeedMonitor m(1);
  for (int i = 0; i < 20; ++i) {
    m.add_compute(0, 0.1 * i, 0.1, 0.1);
    m.add_compute(0, 0.1 * i, 5.0, 0.0);  // no expectation (the worker holds nothing)
    m.add_compute(0, 0.1 * i, std::nan(""), 0.1);
    m.add_compute(3, 0.1 * i, 5.0, 0.1);  // no such worker
  }
  EXPECT_EQ(m.slowdown(0, 1.9), 1.0);
}

TEST(SpeedMonitor, TokensGiveComputePerWorkerAndSendsPerLink) {
  SpeedMonitor m(3);
  for (int i = 0; i < 20; ++i) {
    TokenTrace t;
    t.seconds = 0.1 * i;
    // Pipeline order c -> a (worker b holds nothing).
    t.stages = {{2, 0.03, i == 5 ? 0.5 : 0.002}, {0, 0.02, 0.001}};
    m.add_token(t, {0.01, 0, 0.03});
  }
  EXPECT_EQ(m.slowdown(0, 1.9), 2.0);
  EXPECT_EQ(m.slowdown(1, 1.9), std::nullopt);
  EXPECT_EQ(m.slowdown(2, 1.9), 1.0);
  EXPECT_EQ(m.send_seconds(2, 0, 1.9), 0.002);
  EXPECT_EQ(m.send_seconds(0, 2, 1.9), std::nullopt);  // the last stage's send goes to the head
}

TEST(SpeedMonitor, ExpectedSecondsSumTheProfileOverTheRange) {
  profile::DeviceProfile a, b;
  a.decode_seconds = {1, 2, 4, 8};
  b.decode_seconds = {10, 20, 40, 80};
  EXPECT_EQ(expected_compute_seconds({a, b}, {{0, 3}, {3, 4}}), (std::vector<double>{7, 80}));
  EXPECT_EQ(expected_compute_seconds({a, b}, {{0, 4}, {}}), (std::vector<double>{15, 0}));
}

}  // namespace
}  // namespace ll::cluster
