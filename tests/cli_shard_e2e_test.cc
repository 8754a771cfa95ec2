// The command on the shards `lingualinked split` writes: `run` refuses one with a clear error
// (no abort), `info` says it is a shard and counts only what it holds.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "test_data.h"

namespace ll {
namespace {

struct Outcome {
  int exit_code = -1;  // -1 when the process did not exit normally (a signal, an abort)
  std::string output;  // stdout and stderr
};

Outcome run_cli(const std::string& args) {
  const std::string command = std::string("'") + LL_CLI_PATH + "' " + args + " 2>&1";
  std::FILE* p = popen(command.c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.output.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  return o;
}

class ShardCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = test::shared_data("models/stories260K/stories260K.gguf");
    ASSERT_TRUE(test::exists(model));
    const Outcome split = run_cli("split '" + model + "' --cuts 3 -o '" + dir_ + "'");
    ASSERT_EQ(split.exit_code, 0) << split.output;
  }
  std::string shard(int i) const { return dir_ + "/stories260K.seg" + std::to_string(i) + "of2.gguf"; }
  const std::string dir_ = test::temp_path("cli-shards");
};

TEST_F(ShardCommands, RunOnAShardIsAClearError) {
  for (int i = 1; i <= 2; ++i) {
    const Outcome run = run_cli("run -m '" + shard(i) + "' --temp 0 -n 4");
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("is a shard holding units"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("not a whole model"), std::string::npos) << run.output;
  }
}

TEST_F(ShardCommands, InfoSaysWhatTheShardHolds) {
  const Outcome info = run_cli("info '" + shard(2) + "'");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("shard:           units 3..11 (attn[1] to head) of 12"), std::string::npos)
      << info.output;
  // Attention units 3, 5, 7 and 9 (layers 1 to 4): kv_dim 32, K and V in the default F16.
  EXPECT_NE(info.output.find("(K f16, V f16, 0.5 KiB/token)"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("512 tokens (llama tokenizer)"), std::string::npos) << info.output;

  const Outcome whole = run_cli("info '" + test::shared_data("models/stories260K/stories260K.gguf") + "'");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_EQ(whole.output.find("shard:"), std::string::npos) << whole.output;
  EXPECT_NE(whole.output.find("(K f16, V f16, 0.6 KiB/token)"), std::string::npos) << whole.output;
}

}  // namespace
}  // namespace ll
