// The server's status board (per-device averages and totals, tokens per second, events) and its
// Prometheus rendering.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

#include "server/metrics_text.h"
#include "server/status_board.h"
#include "server/status_json.h"

namespace ll::server {
namespace {

void add_two_devices(StatusBoard& board) {
  DeviceStatus a, b;
  a.name = "a";
  b.name = "b \"quoted\"\\";
  board.set_devices({a, b});
}

TEST(StatusBoard, AveragesAndTotalsPerDevice) {
  StatusBoard board("m", "note");
  add_two_devices(board);
  board.token({{0, 0.010, 0.001, 0.002}, {1, 0.020, 0, 0.004}});
  StatusSnapshot s = board.snapshot();
  // The first token sets the averages.
  EXPECT_DOUBLE_EQ(s.devices[0].compute_seconds, 0.010);
  EXPECT_DOUBLE_EQ(s.devices[1].send_seconds, 0.004);
  board.token({{0, 0.020, 0.001, 0.002}, {1, 0.020, 0, 0.004}});
  s = board.snapshot();
  // Later ones move them a tenth of the way.
  EXPECT_DOUBLE_EQ(s.devices[0].compute_seconds, 0.011);
  EXPECT_EQ(s.devices[0].steps, 2u);
  EXPECT_DOUBLE_EQ(s.devices[0].compute_seconds_total, 0.030);
  EXPECT_DOUBLE_EQ(s.devices[0].queue_seconds_total, 0.002);
  // A sample for a device the board does not know is left out.
  board.token({{7, 1, 1, 1}});
  EXPECT_EQ(board.snapshot().devices.size(), 2u);
}

TEST(StatusBoard, TokensGeneratingAndPerSecond) {
  StatusBoard board("m", "note");
  const auto t0 = StatusBoard::Clock::now();
  for (int i = 0; i < 10; ++i) board.token({}, t0 + std::chrono::milliseconds(10 * i));
  StatusSnapshot s = board.snapshot();
  EXPECT_NEAR(s.generating_tokens_per_second, 100.0, 1e-6);  // one token every 10 ms
  // A pause of seconds is not a slow token.
  board.token({}, t0 + std::chrono::seconds(5));
  EXPECT_NEAR(board.snapshot().generating_tokens_per_second, 100.0, 1e-6);
  ASSERT_EQ(s.tokens_per_second_history.size(), StatusBoard::kHistorySeconds);
  // The tokens count in the second they came once it is over.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  s = board.snapshot();
  uint32_t counted = 0;
  for (uint32_t n : s.tokens_per_second_history) counted += n;
  EXPECT_EQ(counted, 11u);
  EXPECT_GT(s.tokens_per_second, 0);
}

TEST(StatusBoard, SequencesRequestsAndPlacement) {
  StatusBoard board("m", "note");
  add_two_devices(board);
  board.set_parallel(2);
  for (int i = 0; i < 3; ++i) board.sequence_started();
  EXPECT_EQ(board.snapshot().active_sequences, 2u);
  EXPECT_EQ(board.snapshot().queued_requests, 1u) << "past the engine's parallel places a request waits";
  board.sequence_ended(5, 7);
  board.sequence_ended(0, 0);
  StatusSnapshot s = board.snapshot();
  EXPECT_EQ(s.active_sequences, 1u);
  EXPECT_EQ(s.queued_requests, 0u);
  EXPECT_EQ(s.prompt_tokens_total, 5u);
  EXPECT_EQ(s.completion_tokens_total, 7u);
  board.request_answered("/v1/models", 200);
  board.request_answered("/v1/models", 200);
  board.request_answered("/v1/models", 401);
  s = board.snapshot();
  ASSERT_EQ(s.requests.size(), 2u);
  EXPECT_EQ(s.requests[0].count, 2u);
  EXPECT_EQ(s.requests[1].status, 401);
  board.set_placement(1, "units 3..4", 2, 1234);
  board.set_placement(9, "ignored", 1, 1);
  s = board.snapshot();
  EXPECT_EQ(s.devices[1].units, "units 3..4");
  EXPECT_EQ(s.devices[1].memory_used_bytes, 1234u);
}

TEST(StatusBoard, EventsWakeTheirReadersAndAreBounded) {
  StatusBoard board("m", "note");
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    board.event("recovery", "b lost");
  });
  const auto waited_from = std::chrono::steady_clock::now();
  std::vector<StatusEvent> got = board.events_after(0, std::chrono::seconds(10));
  later.join();
  EXPECT_LT(std::chrono::steady_clock::now() - waited_from, std::chrono::seconds(5));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[0].kind, "recovery");
  EXPECT_EQ(event_json(got[0])["text"], "b lost");
  for (int i = 0; i < 100; ++i) board.event("rebalance", std::to_string(i));
  StatusSnapshot s = board.snapshot();
  ASSERT_EQ(s.events.size(), StatusBoard::kEventsKept);
  EXPECT_EQ(s.events.back().id, 101u);
  EXPECT_EQ(board.events_after(101, std::chrono::milliseconds(1)).size(), 0u);
  // Closed: waits end at once.
  board.close();
  const auto closed_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(board.events_after(101, std::chrono::seconds(10)).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, std::chrono::seconds(5));
}

TEST(MetricsText, EveryFamilyDescribedAndLabelsEscaped) {
  StatusBoard board("m", "note");
  add_two_devices(board);
  board.token({{0, 0.5, 0.25, 0.125}, {1, 1, 0, 0}});
  board.request_answered("/v1/completions", 200);
  const std::string text = prometheus_text(board.snapshot());
  EXPECT_NE(text.find("# HELP lingualinked_requests_total "), std::string::npos);
  EXPECT_NE(text.find("# TYPE lingualinked_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("lingualinked_requests_total{route=\"/v1/completions\",status=\"200\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lingualinked_active_sequences gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE lingualinked_queued_requests gauge\n"), std::string::npos);
  EXPECT_NE(text.find("lingualinked_stage_compute_seconds_total{device=\"a\",index=\"0\"} 0.5\n"), std::string::npos);
  EXPECT_NE(text.find("lingualinked_stage_queue_seconds_total{device=\"a\",index=\"0\"} 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("lingualinked_stage_send_seconds_total{device=\"a\",index=\"0\"} 0.125\n"), std::string::npos);
  EXPECT_NE(text.find("lingualinked_stage_steps_total{device=\"b \\\"quoted\\\"\\\\\",index=\"1\"} 1\n"),
            std::string::npos)
      << text;
  // Every sample's family has HELP and TYPE before it.
  std::istringstream lines(text);
  std::set<std::string> described;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      described.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("#", 0) == 0) continue;
    const std::string family = line.substr(0, line.find_first_of("{ "));
    EXPECT_TRUE(described.count(family)) << line;
  }
}

}  // namespace
}  // namespace ll::server
