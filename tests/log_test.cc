// Log lines (core/log.h) and progress lines (core/progress.h): their shapes and levels.
#include "core/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "core/progress.h"
#include "text_lines.h"

namespace ll {
namespace {

using test::lines_of;

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    log::set_level(log::Level::info);
    log::set_format(log::Format::text);
  }
};

TEST_F(LogTest, TextLinesCarryATimestampLevelAndSource) {
  testing::internal::CaptureStderr();
  log::info("worker-1", "session {} loaded", 3);
  log::debug("worker-1", "not shown at the default level");
  const std::vector<std::string> lines = lines_of(testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  worker-1: session 3 loaded)")))
      << lines[0];
}

TEST_F(LogTest, LevelsBelowTheConfiguredOneAreDropped) {
  log::set_level(log::Level::warn);
  testing::internal::CaptureStderr();
  log::info("a", "dropped");
  log::warn("a", "kept");
  log::error("a", "kept too");
  EXPECT_EQ(lines_of(testing::internal::GetCapturedStderr()).size(), 2u);
  log::set_level(log::Level::debug);
  EXPECT_TRUE(log::enabled(log::Level::debug));
  EXPECT_EQ(log::parse_level("debug"), log::Level::debug);
  EXPECT_EQ(log::parse_level("loud"), std::nullopt);
}

TEST_F(LogTest, JsonLinesAreObjectsEvenForHostileText) {
  log::set_format(log::Format::json);
  testing::internal::CaptureStderr();
  log::warn("net", "refused \"key\"\n\x01 and invalid UTF-8 \xff");
  const std::vector<std::string> lines = lines_of(testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 1u) << "a newline in the message stays inside the object";
  const auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["source"], "net");
  EXPECT_TRUE(j["message"].get<std::string>().starts_with("refused \"key\"\n\x01 and invalid UTF-8 "));
  EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}

TEST(ProgressLine, ShowsAmountBarRateAndTimeLeft) {
  const Progress p{"sending units 0..3 to worker 1", 12u << 20, 48u << 20, ProgressUnit::bytes};
  EXPECT_EQ(render_progress(p, 2.0, 8),
            "sending units 0..3 to worker 1  12.0 MiB/48.0 MiB [=>      ]  25%  6.0 MiB/s  6 s left");
  EXPECT_EQ(render_progress(p, 0.1, 0), "sending units 0..3 to worker 1  12.0 MiB/48.0 MiB  25%")
      << "no rate before half a second has passed";
  EXPECT_EQ(render_progress({"workers profiled", 3, 3}, 75.0, 4),
            "workers profiled  3/3 [====] 100%  0.04/s  done in 1:15 min");
  EXPECT_EQ(render_progress({"empty", 5, 0}, 1.0, 0), "empty  0/0 100%  done in 1 s") << "done clamps to the total";
}

}  // namespace
}  // namespace ll
