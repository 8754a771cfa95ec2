// The log limiter: the first lines of an interval in full, then one summary per interval.
#include "core/log_limiter.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ll {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

struct Fixture {
  Clock::time_point now{};
  std::vector<std::string> lines;
  LogLimiter limiter(size_t burst, size_t max_tracked = 1024) {
    return LogLimiter({.what = "refused handshakes", .sources = "keys", .burst = burst, .interval = seconds(10),
                       .max_tracked_sources = max_tracked},
                      [this](const std::string& line) { lines.push_back(line); }, [this] { return now; });
  }
};

TEST(LogLimiter, PrintsTheFirstLinesThenOneSummaryPerInterval) {
  Fixture f;
  LogLimiter log = f.limiter(3);
  for (int i = 0; i < 10; ++i) log.log(fmt::format("key{}", i % 4), fmt::format("refused key{}", i % 4));
  ASSERT_EQ(f.lines, (std::vector<std::string>{"refused key0", "refused key1", "refused key2"}));
  log.flush();  // the interval has not ended: nothing yet
  EXPECT_EQ(f.lines.size(), 3u);
  f.now += seconds(11);
  log.flush();
  ASSERT_EQ(f.lines.size(), 4u);
  EXPECT_EQ(f.lines[3], "7 more refused handshakes from 4 keys in the last 10 s");
  log.flush();  // said once
  EXPECT_EQ(f.lines.size(), 4u);
  // A new interval starts with lines in full again.
  log.log("key9", "refused key9");
  EXPECT_EQ(f.lines.back(), "refused key9");
}

TEST(LogLimiter, ADueSummaryComesBeforeTheNextLine) {
  Fixture f;
  LogLimiter log = f.limiter(1);
  log.log("a", "first");
  log.log("a", "second");
  f.now += seconds(12);
  log.log("b", "third");
  EXPECT_EQ(f.lines, (std::vector<std::string>{"first", "1 more refused handshakes from 1 keys in the last 10 s", "third"}));
}

TEST(LogLimiter, AFloodOfSourcesKeepsMemoryBounded) {
  Fixture f;
  LogLimiter log = f.limiter(2, /*max_tracked=*/100);
  for (int i = 0; i < 5000; ++i) log.log(fmt::format("key{}", i), "refused");
  EXPECT_LE(log.tracked_sources(), 100u);
  f.now += seconds(10);
  log.flush();
  ASSERT_EQ(f.lines.size(), 3u);
  EXPECT_EQ(f.lines[2], "4998 more refused handshakes from at least 100 keys in the last 10 s");
  EXPECT_EQ(log.tracked_sources(), 0u);
}

}  // namespace
}  // namespace ll
