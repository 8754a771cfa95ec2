// Every numeric flag outside its range is refused by `lingualinked` before any work, with the
// flag and its range in the message and no abort; -n -1 generates until the context is full.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "test_data.h"

namespace ll {
namespace {

struct Outcome {
  int exit_code = -1;  // -1 when the process did not exit normally (a signal, an abort)
  std::string output;
};

// `args` run by the command; `output` is stdout, followed by stderr when `with_stderr`.
Outcome run_cli(const std::string& args, bool with_stderr = true) {
  const std::string command =
      std::string("'") + LL_CLI_PATH + "' " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  std::FILE* p = popen(command.c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.output.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  return o;
}

const std::string kModel = "-m '" + test::shared_data("models/stories260K/stories260K.gguf") + "'";

void expect_refused(const std::string& args, const std::string& message) {
  SCOPED_TRACE(args);
  const Outcome o = run_cli(args);
  EXPECT_EQ(o.exit_code, 105) << o.output;  // CLI11's validation error
  EXPECT_NE(o.output.find(message), std::string::npos) << "'" << message << "' not in: " << o.output;
}

TEST(CliParams, SamplerSettingsOutsideTheirRangesAreRefused) {
  expect_refused("run " + kModel + " --min-p 2", "--min-p: min-p 2 is outside 0..1 (0 = off)");
  expect_refused("run " + kModel + " --temp nan", "--temp: temperature nan is not a finite number");
  expect_refused("run " + kModel + " --top-p 2", "--top-p: top-p 2 is outside 0..1 (1 = off)");
  expect_refused("run " + kModel + " --repeat-penalty 0", "--repeat-penalty: repeat penalty 0 is not a finite number above 0");
  expect_refused("run " + kModel + " --top-k -1", "--top-k: top-k -1 is negative (0 = off)");
  expect_refused("run " + kModel + " --repeat-last-n -2", "--repeat-last-n: repeat-last-n -2 is below -1");
  expect_refused("demo " + kModel + " --min-p 1.5", "--min-p: min-p 1.5 is outside 0..1 (0 = off)");
}

TEST(CliParams, AbsurdThreadCountsAreRefused) {
  expect_refused("run " + kModel + " -t 100000", "--threads: Value 100000 not in range 0 to 512");
  expect_refused("worker -t 100000", "--threads: Value 100000 not in range 0 to 512");
  expect_refused("bench " + kModel + " -t 1,100000", "--threads: Value 100000 not in range 0 to 512");
  expect_refused("plan profile " + kModel + " -t 513", "--threads: Value 513 not in range 0 to 512");
}

TEST(CliParams, AbsurdContextSizesAreRefused) {
  expect_refused("run " + kModel + " -c 99999999999", "--ctx-size: Value 99999999999 not in range 0 to 16777216");
  expect_refused("bench " + kModel + " -p 64,-1", "--n-prompt: Value -1 not in range 0 to 16777216");
}

TEST(CliParams, DurationsOutsideTheirRangesAreRefused) {
  expect_refused("plan " + kModel + " --time-limit -5", "--time-limit: -5 is not a number of seconds in 0.001..86400");
  expect_refused("plan " + kModel + " --time-limit nan", "--time-limit: nan is not a number of seconds in 0.001..86400");
  expect_refused("worker --insecure --listen tcp://127.0.0.1:0 --session-lease inf",
                 "--session-lease: inf is not a number of seconds in 0.1..86400");
  expect_refused("worker --insecure --listen tcp://127.0.0.1:0 --session-lease 0",
                 "--session-lease: 0 is not a number of seconds in 0.1..86400");
  expect_refused("worker --insecure --listen tcp://127.0.0.1:0 --session-lease 86401",
                 "--session-lease: 86401 is not a number of seconds in 0.1..86400");
}

TEST(CliParams, SessionCountsOutsideTheirRangeAreRefused) {
  expect_refused("worker --insecure --listen tcp://127.0.0.1:0 --max-sessions 0",
                 "--max-sessions: Value 0 not in range 1 to 1024");
}

TEST(CliParams, NPredictBelowMinus2IsRefused) {
  expect_refused("run " + kModel + " -n -3", "--n-predict: n-predict -3 is below -2");
}

TEST(CliParams, NPredictMinus1GeneratesUntilTheContextIsFull) {
  // stories260K never ends its story within 256 positions: run.c's 256 steps.
  const Outcome o = run_cli("run " + kModel + " -n -1 -c 256 --temp 0 -t 1", /*with_stderr=*/false);
  ASSERT_EQ(o.exit_code, 0) << o.output;
  EXPECT_EQ(o.output, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n256.txt")) + "\n");
}

}  // namespace
}  // namespace ll
