// The command's -v / --log-level / --log-format flags: before or after the subcommand, log
// lines as JSON objects, unknown values refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_run.h"
#include "text_lines.h"

namespace ll {
namespace {

using test::lines_of;

TEST(LogFlags, WorkerLinesAsJsonWithTheFlagBeforeOrAfterTheSubcommand) {
  for (const std::string args : {"--log-format json worker --insecure --listen tcp://127.0.0.1:0",
                                 "worker --insecure --listen tcp://127.0.0.1:0 --log-format json -v"}) {
    // The worker serves until `timeout` stops it.
    const test::CliOutcome o = test::run_cli(args, 2);
    ASSERT_NE(o.out.find("listening tcp://127.0.0.1:"), std::string::npos) << args << "\n" << o.err;
    const std::vector<std::string> lines = lines_of(o.err);
    ASSERT_FALSE(lines.empty()) << args;
    for (const std::string& line : lines) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(j.is_object()) << args << ": " << line;
      EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("source")) << line;
    }
    EXPECT_NE(o.err.find("INSECURE plain-text links"), std::string::npos) << o.err;
  }
}

TEST(LogFlags, AnUnknownLevelOrFormatIsRefused) {
  const test::CliOutcome level = test::run_cli("--log-level loud info");
  EXPECT_NE(level.exit_code, 0);
  EXPECT_NE(level.err.find("--log-level"), std::string::npos) << level.err;
  const test::CliOutcome format = test::run_cli("info --log-format xml");
  EXPECT_NE(format.exit_code, 0);
  EXPECT_NE(format.err.find("--log-format"), std::string::npos) << format.err;
}

}  // namespace
}  // namespace ll
