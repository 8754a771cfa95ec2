// Keys handled like keys: `keygen` never overwrites a key by accident, prints the public half
// of an existing key file, refuses a secret that others can read; the demo leaves no secret key
// on disk, even when it is killed.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli_run.h"
#include "test_data.h"

namespace ll {
namespace {

namespace fs = std::filesystem;

using Outcome = test::CliOutcome;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string public_line(const std::string& key_file) {
  std::istringstream in(read_file(key_file));
  std::string word, key;
  while (in >> word >> key) {
    if (word == "public") return key;
  }
  return "";
}

class Keygen : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  Outcome cli(const std::string& args) { return test::run_cli(args, 20); }

  const std::string dir_ = test::temp_path("cli-keys");
  const std::string key_ = dir_ + "/head.key";
};

TEST_F(Keygen, WritesOwnerOnlyAndPrintsThePublicKey) {
  const Outcome o = cli("keygen -o '" + key_ + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, public_line(key_) + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Z85 keys hold shell characters: the ready-to-paste form is single-quoted.
  EXPECT_TRUE(contains(o.err, "'" + public_line(key_) + "'")) << o.err;
}

TEST_F(Keygen, RefusesToOverwriteWithoutForce) {
  ASSERT_EQ(cli("keygen -o '" + key_ + "'").exit_code, 0);
  const std::string before = read_file(key_);
  const Outcome again = cli("keygen -o '" + key_ + "'");
  EXPECT_EQ(again.exit_code, 1) << again.err;
  EXPECT_TRUE(contains(again.err, key_ + " already exists")) << again.err;
  EXPECT_TRUE(contains(again.err, "--force")) << again.err;
  EXPECT_TRUE(again.out.empty()) << again.out;
  EXPECT_EQ(read_file(key_), before);

  const Outcome forced = cli("keygen --force -o '" + key_ + "'");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(read_file(key_), before);
  EXPECT_EQ(forced.out, public_line(key_) + "\n");
}

TEST_F(Keygen, PrintsThePublicHalfOfAnExistingKey) {
  const Outcome made = cli("keygen -o '" + key_ + "'");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string before = read_file(key_);
  const Outcome shown = cli("keygen --public '" + key_ + "'");
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(shown.out, made.out);
  EXPECT_EQ(read_file(key_), before);
}

TEST_F(Keygen, RefusesASecretOthersCanRead) {
  ASSERT_EQ(cli("keygen -o '" + key_ + "'").exit_code, 0);
  ::chmod(key_.c_str(), 0644);
  const Outcome o = cli("keygen --public '" + key_ + "'");
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_TRUE(contains(o.err, "permissions 0644 are too open for a secret key; run chmod 600")) << o.err;
}

TEST_F(Keygen, NeedsAnOutputOrAKeyToShow) {
  const Outcome o = cli("keygen");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_TRUE(contains(o.err, "-o FILE")) << o.err;
  EXPECT_TRUE(contains(o.err, "--public FILE")) << o.err;
}

// The demo's workers are started with keys the demo made; killed with SIGKILL it cannot clean
// up, so no secret key may be on disk in the first place.
TEST(Demo, LeavesNoSecretKeyWhenKilled) {
  const std::string model = test::shared_data("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(test::exists(model));
  const std::string tmp = test::temp_path("demo-tmp");
  fs::create_directories(tmp);
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("TMPDIR", tmp.c_str(), 1);
    dup2(err[1], STDERR_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    execl(LL_CLI_PATH, LL_CLI_PATH, "demo", "-m", model.c_str(), "--devices", "2", "--planner", "even", "-n", "400",
          "-t", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(err[1]);
  // Killed once its workers hold their keys and serve: after the line naming the links.
  std::FILE* f = fdopen(err[0], "r");
  std::string seen;
  char line[1024];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    seen += line;
    if (contains(line, "CURVE-encrypted links") || contains(line, "error:")) break;
  }
  ::kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::fclose(f);
  ASSERT_TRUE(contains(seen, "CURVE-encrypted links")) << seen;
  std::string left;
  for (const auto& entry : fs::recursive_directory_iterator(tmp)) {
    const std::string name = entry.path().string();
    if (!entry.is_directory() && !name.ends_with(".log")) left += name + "\n";
    if (entry.is_directory() && contains(name, "keys")) left += name + "/\n";
  }
  EXPECT_TRUE(left.empty()) << "left on disk:\n" << left;
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace ll
