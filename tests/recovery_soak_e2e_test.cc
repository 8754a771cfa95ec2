// Device loss recovery end to end through `lingualinked cluster-bench`: a soak of short requests
// while workers are killed, frozen and restarted ends with every request's text identical to an
// undisturbed run and nothing leaked; a device killed mid-run is reported as a recovery with
// no token lost or altered.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "test_data.h"

namespace ll {
namespace {

struct Outcome {
  int exit_code = -1;  // -1 when the process did not exit normally (a signal, an abort)
  std::string output;
};

// `args` run by the command; `output` is stdout (stderr, the progress, goes to the test's log).
Outcome run_cli(const std::string& args) {
  const std::string command = std::string("'") + LL_CLI_PATH + "' " + args;
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

TEST(RecoverySoak, RequestsSurviveKillsFreezesAndRestartsWithTheReferenceTextAndNothingLeaks) {
  ASSERT_TRUE(test::exists(test::shared_data("models/stories260K/stories260K.gguf")));
  const Outcome o = run_cli("cluster-bench " + kModel +
                            " --planner even --devices 'a;b;c' --soak 24 --faults 4 --in-flight 3 --fault-every 1"
                            " --seed 7 -p 8 -n 24");
  EXPECT_EQ(o.exit_code, 0) << o.output;
  // Requests go on past 24 until the fourth fault; every one of them identical to the reference.
  std::smatch m;
  const std::regex summary(R"(soak: (\d+) requests in [0-9.]+ s, (\d+) identical to the reference, 0 ended as no )"
                           R"(placement could hold the model; (\d+) faults)");
  ASSERT_TRUE(std::regex_search(o.output, m, summary)) << o.output;
  EXPECT_GE(std::stoul(m[1]), 24u);
  EXPECT_EQ(m[2], m[1]);
  EXPECT_GE(std::stoul(m[3]), 4u);
  EXPECT_NE(o.output.find("\npassed\n"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("child processes once the cluster stopped: 0"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("fresh sessions every worker took after the soak: 4"), std::string::npos) << o.output;
}

TEST(RecoveryBench, AKilledWorkerIsOneRecoveryWithNoTokenLostOrAltered) {
  ASSERT_TRUE(test::exists(test::shared_data("models/stories260K/stories260K.gguf")));
  const Outcome o = run_cli("cluster-bench " + kModel +
                            " --planner even --devices 'a;b:fail=kill@0.1s;c' -p 8 -n 400 --parallel 2 -o json");
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const auto j = nlohmann::json::parse(o.output);
  ASSERT_EQ(j.at("faults").size(), 1u) << o.output;
  EXPECT_EQ(j["faults"][0].at("worker").get<size_t>(), 1u);
  ASSERT_EQ(j.at("recoveries").size(), 1u) << o.output;
  const auto& r = j["recoveries"][0];
  EXPECT_EQ(r.at("worker").get<size_t>(), 1u);
  EXPECT_FALSE(r.at("failed").get<bool>());
  ASSERT_TRUE(r.at("fault").is_object()) << "the recovery was not traced to the kill\n" << o.output;
  EXPECT_EQ(r.at("fault").at("label").get<std::string>(), j["faults"][0].at("label").get<std::string>());
  EXPECT_GE(r.at("detect_seconds").get<double>(), 0.0);
  EXPECT_GT(r.at("total_seconds").get<double>(), 0.0);
  EXPECT_EQ(r.at("sequences").get<size_t>(), 2u);
  ASSERT_EQ(j.at("requests").size(), 2u);
  for (const auto& request : j["requests"]) {
    EXPECT_EQ(request.at("tokens").get<size_t>(), 400u);
    EXPECT_EQ(request.at("lost").get<size_t>(), 0u);
    EXPECT_EQ(request.at("altered").get<size_t>(), 0u);
    EXPECT_EQ(request.at("error").get<std::string>(), "");
  }
  EXPECT_EQ(j.at("altered_requests").get<size_t>(), 0u);
  EXPECT_EQ(j.at("failed_requests").get<size_t>(), 0u);
}

}  // namespace
}  // namespace ll
