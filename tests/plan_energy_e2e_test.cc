// `lingualinked plan` with device presets and energy figures: joules per token under every
// objective, the energy objective within its bound, and the errors of its flags.
#include <gtest/gtest.h>

#include "cli_run.h"

namespace ll {
namespace {

const std::string kModel = "-m '" + test::shared_data("models/stories260K/stories260K.gguf") + "'";
const std::string kDevices = " -t 1 --devices 'phone-mid:battery=15%;phone-low;pi4'";

TEST(PlanEnergyE2E, EveryObjectivePrintsJoulesPerToken) {
  for (const char* objective : {"latency", "throughput", "energy --max-latency-ms 1000"}) {
    const test::CliOutcome o = test::run_cli("plan " + kModel + kDevices + " --objective " + objective);
    ASSERT_EQ(o.exit_code, 0) << objective << ": " << o.err;
    EXPECT_NE(o.out.find("mJ/token"), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("mJ per token, all devices"), std::string::npos) << o.out;
    for (const char* device : {"phone-mid", "phone-low", "pi4"}) EXPECT_NE(o.out.find(device), std::string::npos);
  }
}

TEST(PlanEnergyE2E, BadEnergyFlagsSayWhy) {
  const std::pair<std::string, std::string> cases[] = {
      {kDevices + " --objective energy", "needs a latency bound: --max-latency-ms"},
      {kDevices + " --objective energy --max-latency-ms 0.000001", "--max-latency-ms"},
      {kDevices + " --objective energy --max-latency-ms 0.01", "no plan meets the latency bound of 0.010 ms"},
      {kDevices + " --objective energy --max-latency-ms 10 --planner dp", "needs --planner milp"},
      {kDevices + " --max-latency-ms 10", "belongs to --objective energy"},
      {" -t 1 --devices 'a;b' --objective energy --max-latency-ms 10", "device 'a' has no energy figures"},
      {" -t 1 --devices 'a:preset=phone-max'", "unknown preset 'phone-max'"},
      {" -t 1 --devices 'phone-low:idle=9W'", "computing draws at least as much"},
      {" -t 1 --devices 'phone-low:battery=200'", "battery 200% is not between 0 and 100"},
  };
  for (const auto& [flags, expected] : cases) {
    const test::CliOutcome o = test::run_cli("plan " + kModel + flags);
    EXPECT_NE(o.exit_code, 0) << flags;
    EXPECT_NE(o.err.find(expected), std::string::npos) << flags << ": " << o.err;
  }
}

}  // namespace
}  // namespace ll
