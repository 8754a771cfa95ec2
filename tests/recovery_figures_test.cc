// The recovery figures of cluster-bench: each phase counted from the fault that caused it, and
// the tokens lost or altered against the reference run.
#include "cluster/recovery_figures.h"

#include <gtest/gtest.h>

namespace ll::cluster {
namespace {

RecoveryEvent event(size_t worker, double last_heard, double detected, double planned, double loaded,
                    double resumed) {
  RecoveryEvent e;
  e.worker = worker;
  e.last_heard_seconds = last_heard;
  e.detected_seconds = detected;
  e.planned_seconds = planned;
  e.loaded_seconds = loaded;
  e.resumed_seconds = resumed;
  e.sequences = 3;
  e.replayed_tokens = 120;
  return e;
}

TEST(RecoveryFigures, PhasesCountFromTheLatestFaultOnTheLostWorkerBeforeItsDetection) {
  RunTrace trace;
  trace.recoveries = {event(1, 4.9, 7.0, 7.25, 8.0, 8.5), event(2, 11.9, 14.0, 14.5, 15.0, 15.125)};
  // b is frozen at 5 s and thawed at 8 s; c killed at 12 s; a fault after a detection is no cause.
  const std::vector<FaultTime> faults = {
      {5.0, 1, "b: stopped"}, {6.0, 2, "c: cpu 0.5"}, {8.0, 1, "b: thawed"}, {12.0, 2, "c: killed"}, {20, 2, "x"}};
  const auto figures = recovery_figures(trace, faults);
  ASSERT_EQ(figures.size(), 2u);
  ASSERT_TRUE(figures[0].fault.has_value());
  EXPECT_EQ(figures[0].fault->label, "b: stopped");
  EXPECT_DOUBLE_EQ(figures[0].detect_seconds, 2.0);
  EXPECT_DOUBLE_EQ(figures[0].replan_seconds, 0.25);
  EXPECT_DOUBLE_EQ(figures[0].load_seconds, 0.75);
  EXPECT_DOUBLE_EQ(figures[0].replay_seconds, 0.5);
  EXPECT_DOUBLE_EQ(figures[0].total_seconds, 3.5);
  EXPECT_EQ(figures[0].event.sequences, 3u);
  EXPECT_EQ(figures[0].event.replayed_tokens, 120u);
  ASSERT_TRUE(figures[1].fault.has_value());
  EXPECT_EQ(figures[1].fault->label, "c: killed");
  EXPECT_DOUBLE_EQ(figures[1].detect_seconds, 2.0);
  EXPECT_DOUBLE_EQ(figures[1].total_seconds, 3.125);
}

TEST(RecoveryFigures, WithoutAFaultOnTheWorkerTheLatestOtherFaultIsTheCauseAndWithoutAnyTheLastMessage) {
  RunTrace trace;
  trace.recoveries = {event(0, 2.5, 4.0, 4.5, 5.0, 5.5)};
  const auto other = recovery_figures(trace, {{3.0, 1, "b: link cut"}});
  ASSERT_TRUE(other[0].fault.has_value());
  EXPECT_EQ(other[0].fault->worker, 1u);
  EXPECT_DOUBLE_EQ(other[0].detect_seconds, 1.0);
  const auto none = recovery_figures(trace, {});
  EXPECT_FALSE(none[0].fault.has_value());
  EXPECT_DOUBLE_EQ(none[0].detect_seconds, 1.5);
  EXPECT_DOUBLE_EQ(none[0].total_seconds, 3.0);
}

TEST(RecoveryFigures, ScheduleTimesMoveToTheRunClock) {
  const auto schedules = std::chrono::steady_clock::time_point{} + std::chrono::seconds(100);
  const auto run = schedules + std::chrono::milliseconds(250);
  EXPECT_DOUBLE_EQ(on_run_clock(5.0, schedules, run), 4.75);
}

TEST(CompareTokens, CountsLostAlteredAndExtraTokens) {
  const std::vector<int32_t> reference = {5, 6, 7, 8};
  EXPECT_TRUE(compare_tokens(reference, reference, "").matches());
  const auto altered = compare_tokens(reference, {5, 9, 7, 1, 2}, "");
  EXPECT_EQ(altered.altered, 3u);  // two differ, one beyond the reference
  EXPECT_EQ(altered.lost, 0u);
  const auto ended = compare_tokens(reference, {5, 6}, "worker 1 'b' lost");
  EXPECT_EQ(ended.lost, 2u);
  EXPECT_EQ(ended.altered, 0u);
  EXPECT_EQ(ended.error, "worker 1 'b' lost");
  EXPECT_FALSE(ended.matches());
}

}  // namespace
}  // namespace ll::cluster
