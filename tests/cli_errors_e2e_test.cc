// What `lingualinked` says to a careless user: each error names what is wrong and what to do,
// and arrives at once instead of after a timeout.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "test_data.h"

namespace ll {
namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
  int exit_code = -1;  // -1 when the process did not exit normally (a signal, an abort)
  std::string output;  // stdout and stderr
  double seconds = 0;
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs the command with a hard limit, so that a hang fails the test instead of blocking it.
Outcome run_cli(const std::string& args) {
  const std::string command = std::string("timeout 20 '") + LL_CLI_PATH + "' " + args + " 2>&1";
  const auto start = Clock::now();
  std::FILE* p = popen(command.c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.output.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  o.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return o;
}

// A `lingualinked worker` in the background; its first stdout line says where it listens.
class WorkerProcess {
 public:
  explicit WorkerProcess(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int null = ::open("/dev/null", O_WRONLY);
      dup2(null, STDERR_FILENO);
      std::vector<std::string> all = {LL_CLI_PATH, "worker"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    std::FILE* f = fdopen(out[0], "r");
    char line[512] = {};
    if (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) first_line_ = line;
    if (f != nullptr) std::fclose(f);
  }
  ~WorkerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& first_line() const { return first_line_; }
  // "listening ENDPOINT key KEY" -> ENDPOINT
  std::string endpoint() const {
    std::smatch m;
    return std::regex_search(first_line_, m, std::regex("listening (\\S+) key")) ? m[1].str() : "";
  }

 private:
  pid_t pid_ = -1;
  std::string first_line_;
};

std::string public_key_of(const std::string& key_file) {
  std::ifstream in(key_file);
  std::string word, key;
  while (in >> word >> key) {
    if (word == "public") return key;
  }
  return "";
}

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_);
    const Outcome keygen = run_cli("keygen -o '" + head_key_ + "'");
    ASSERT_EQ(keygen.exit_code, 0) << keygen.output;
    head_public_ = public_key_of(head_key_);
    ASSERT_FALSE(head_public_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `run` on the given workers, each pinned to `worker_key`.
  Outcome run_on(const std::string& workers, size_t n_workers, const std::string& worker_key) {
    std::string keys;
    for (size_t i = 0; i < n_workers; ++i) keys += (i ? "," : "") + worker_key;
    return run_cli("run -m '" + model_ + "' -n 2 --key '" + head_key_ + "' --workers '" + workers +
                   "' --worker-keys '" + keys + "'");
  }

  const std::string dir_ = test::temp_path("cli-errors");
  const std::string head_key_ = dir_ + "/head.key";
  const std::string model_ = test::shared_data("models/stories260K/stories260K.gguf");
  std::string head_public_;
};

TEST_F(CliErrors, DamagedLlama2cCheckpointGetsTheImportersError) {
  const std::string original = test::shared_data("models/stories260K/stories260K.bin");
  ASSERT_TRUE(test::exists(original));
  const std::string damaged = dir_ + "/stories260K.bin";
  std::vector<unsigned char> bytes = test::read_bytes(original);
  bytes.resize(100000);
  std::ofstream(damaged, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::filesystem::copy_file(test::shared_data("models/stories260K/tok512.bin"), dir_ + "/tok512.bin");
  for (const std::string& command : {"info '" + damaged + "'", "run -n 1 -m '" + damaged + "'"}) {
    const Outcome o = run_cli(command);
    EXPECT_EQ(o.exit_code, 1) << command << "\n" << o.output;
    EXPECT_TRUE(contains(o.output, "llama2.c header")) << command << "\n" << o.output;
    EXPECT_TRUE(contains(o.output, "the file is truncated")) << command << "\n" << o.output;
    EXPECT_FALSE(contains(o.output, "not a GGUF file (magic")) << command << "\n" << o.output;
  }
}

TEST_F(CliErrors, DirectoryAsModelSaysSo) {
  for (const std::string& command : {"info '" + dir_ + "'", "run -n 1 -m '" + dir_ + "'"}) {
    const Outcome o = run_cli(command);
    EXPECT_EQ(o.exit_code, 1) << command << "\n" << o.output;
    EXPECT_TRUE(contains(o.output, dir_ + " is a directory, not a regular file; give the path of a file in it")) << o.output;
  }
}

TEST_F(CliErrors, NeitherGgufNorLlama2cSaysBoth) {
  const std::string text = dir_ + "/notes.txt";
  std::ofstream(text) << "hello, this is not a model\n";
  const Outcome o = run_cli("info '" + text + "'");
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "neither a GGUF file")) << o.output;
  EXPECT_TRUE(contains(o.output, "nor a llama2.c checkpoint (truncated at byte 27")) << o.output;
}

// Port of a socket that was bound and closed: nothing listens there.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST_F(CliErrors, ClosedPortIsSaidAtOnceWithoutTheKeyQuestion) {
  const std::string endpoint = "127.0.0.1:" + std::to_string(closed_port());
  const Outcome o = run_on(endpoint, 1, head_public_);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_LT(o.seconds, 2.5) << o.output;
  EXPECT_TRUE(contains(o.output, "nothing is listening at tcp://" + endpoint)) << o.output;
  EXPECT_TRUE(contains(o.output, "is it running")) << o.output;
  EXPECT_FALSE(contains(o.output, "allow this head's public key")) << o.output;
}

TEST_F(CliErrors, UnresolvableHostIsNamedAtOnce) {
  const Outcome o = run_on("no-such-host.invalid:7070", 1, head_public_);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_LT(o.seconds, 2.5) << o.output;
  EXPECT_TRUE(contains(o.output, "cannot resolve host 'no-such-host.invalid'")) << o.output;
  EXPECT_FALSE(contains(o.output, "allow this head's public key")) << o.output;
}

TEST_F(CliErrors, RefusedHandshakeAsksAboutTheKey) {
  // The worker allows some other head, not this one.
  const std::string other_key = dir_ + "/other.key";
  ASSERT_EQ(run_cli("keygen -o '" + other_key + "'").exit_code, 0);
  WorkerProcess worker({"--listen", "tcp://127.0.0.1:0", "--allow", public_key_of(other_key)});
  ASSERT_FALSE(worker.endpoint().empty()) << worker.first_line();
  std::smatch m;
  const std::string line = worker.first_line();
  ASSERT_TRUE(std::regex_search(line, m, std::regex("key (\\S+)")));
  const Outcome o = run_on(worker.endpoint().substr(6), 1, m[1].str());
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_LT(o.seconds, 4.5) << o.output;
  EXPECT_TRUE(contains(o.output, "refused our key")) << o.output;
  EXPECT_TRUE(contains(o.output, "allow this head's public key")) << o.output;
}

TEST_F(CliErrors, SameWorkerListedTwiceIsRefusedUpFront) {
  const Outcome o = run_on("127.0.0.1:7070,tcp://127.0.0.1:7070,127.0.0.1:7070", 3, head_public_);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_LT(o.seconds, 2.5) << o.output;
  EXPECT_TRUE(contains(o.output, "tcp://127.0.0.1:7070 is listed more than once in --workers")) << o.output;
}

TEST_F(CliErrors, BadWorkerEndpointsSayHowToWriteThem) {
  Outcome o = run_on("127.0.0.1", 1, head_public_);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "tcp://127.0.0.1: no port")) << o.output;
  o = run_on("", 1, head_public_);
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "--workers: an empty entry")) << o.output;
}

TEST_F(CliErrors, UnknownSubcommandIsNamedWithTheList) {
  const Outcome o = run_cli("rnu -m x.gguf");
  EXPECT_NE(o.exit_code, 0) << o.output;
  EXPECT_TRUE(contains(o.output, "unknown subcommand 'rnu'")) << o.output;
  EXPECT_TRUE(contains(o.output, "run, info")) << o.output;
  EXPECT_TRUE(contains(o.output, "--help")) << o.output;
  EXPECT_FALSE(contains(o.output, "A subcommand is required")) << o.output;
}

// The refusal names loopback endpoints to use instead; each of them must really bind.
TEST_F(CliErrors, InsecureOffLoopbackRecommendsEndpointsThatBind) {
  const Outcome o = run_cli("worker --insecure --listen tcp://0.0.0.0:0");
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "not a loopback endpoint")) << o.output;
  EXPECT_FALSE(contains(o.output, "insecure = false")) << o.output;
  const std::regex endpoint("tcp://[^ ,;)]+:0");
  std::vector<std::string> recommended;
  for (auto it = std::sregex_iterator(o.output.begin(), o.output.end(), endpoint); it != std::sregex_iterator(); ++it) {
    if (it->str() != "tcp://0.0.0.0:0") recommended.push_back(it->str());
  }
  ASSERT_GE(recommended.size(), 3u) << o.output;
  for (const std::string& e : recommended) {
    WorkerProcess worker({"--insecure", "--listen", e});
    EXPECT_TRUE(contains(worker.first_line(), "listening tcp://")) << e << " does not bind: " << worker.first_line();
  }
}

// A Z85 key may begin with '[' and end with ']', which the option parser would otherwise take
// for a list and strip: the worker must take such a key whole.
TEST_F(CliErrors, AllowedKeyInBracketsIsTakenWhole) {
  const std::string key = "[" + std::string(38, '0') + "]";
  WorkerProcess worker({"--listen", "tcp://127.0.0.1:0", "--allow", key});
  EXPECT_TRUE(contains(worker.first_line(), "listening tcp://")) << worker.first_line();
}

TEST_F(CliErrors, DirectoryAsKeyFileIsNotAPermissionProblem) {
  const Outcome o = run_cli("worker --listen tcp://127.0.0.1:0 --key '" + dir_ + "' --allow '" + head_public_ + "'");
  EXPECT_EQ(o.exit_code, 1) << o.output;
  EXPECT_TRUE(contains(o.output, "is a directory, not a key file")) << o.output;
  EXPECT_FALSE(contains(o.output, "too open")) << o.output;
}

}  // namespace
}  // namespace ll
