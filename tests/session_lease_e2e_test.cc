// Liveness between processes: a head that dies mid-run leaves no session behind once the
// worker's lease runs out, a frozen worker is noticed by its head's link within 2.5 s, and a
// head idle between runs keeps its session with KeepAlive.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/head.h"
#include "emulate/local_cluster.h"
#include "graph/graph.h"
#include "model/model.h"
#include "net/keys.h"
#include "net/transport.h"
#include "test_data.h"
#include "wire.pb.h"

namespace ll {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

// `lingualinked ARGS...` with stdout on a pipe (when `stdout_pipe`) or in `log`, stderr in `log`.
pid_t spawn_cli(const std::vector<std::string>& args, const std::string& log, int* stdout_pipe) {
  int out[2] = {-1, -1};
  if (stdout_pipe != nullptr && pipe(out) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, STDERR_FILENO);
    dup2(stdout_pipe != nullptr ? out[1] : fd, STDOUT_FILENO);
    std::vector<std::string> all = {LL_CLI_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (stdout_pipe != nullptr) {
    ::close(out[1]);
    *stdout_pipe = out[0];
  }
  return pid;
}

// A `lingualinked worker` on loopback allowing `heads`, its stderr in a log file.
class WorkerProcess {
 public:
  WorkerProcess(const std::vector<std::string>& heads, const std::vector<std::string>& extra_args) {
    std::string allow;
    for (const auto& k : heads) allow += (allow.empty() ? "" : ",") + k;
    std::vector<std::string> args = {"worker", "--listen", "tcp://127.0.0.1:0", "--threads", "1", "--allow", allow,
                                     "--models", std::filesystem::path(kStories).parent_path().string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    int out = -1;
    pid_ = spawn_cli(args, log_, &out);
    std::FILE* f = fdopen(out, "r");
    char line[512] = {};
    if (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
      std::smatch m;
      const std::string first = line;
      if (std::regex_search(first, m, std::regex("listening (\\S+) key (\\S+)"))) address_ = {m[1].str(), m[2].str()};
    }
    if (f != nullptr) std::fclose(f);
  }
  ~WorkerProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ok() const { return !address_.endpoint.empty(); }
  pid_t pid() const { return pid_; }
  const cluster::WorkerAddress& address() const { return address_; }
  std::string log() const {
    std::FILE* f = std::fopen(log_.c_str(), "r");
    std::string text;
    if (f == nullptr) return text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    return text;
  }
  // True once the log holds `fragment`, checked until `timeout`.
  bool logged_within(const std::string& fragment, Clock::duration timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (log().find(fragment) == std::string::npos) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

 private:
  static inline int count_ = 0;
  const std::string log_ = test::temp_path("lease-worker-" + std::to_string(count_++) + ".log");
  pid_t pid_ = -1;
  cluster::WorkerAddress address_;
};

int64_t unit_count() {
  auto m = model::Model::load(kStories);
  return m.ok() ? static_cast<int64_t>(graph::build_graph(*m.value()).units.size()) : 0;
}

Result<std::unique_ptr<cluster::Head>> connect(const WorkerProcess& w, const net::KeyPair& keys) {
  cluster::HeadOptions o;
  o.workers = {w.address()};
  o.keys = keys;
  return cluster::Head::connect(o);
}

Status load_all(cluster::Head& head, const model::Model& m) {
  cluster::SegmentLoadOptions lo;
  lo.n_ctx = 256;
  return head.load(kStories, m, {model::UnitRange{0, unit_count()}}, lo);
}

cluster::Request greedy_200() {
  cluster::Request r;
  r.n_predict = 200;
  r.sampling.temp = 0;
  return r;
}

std::string reference_text() {
  return test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt"));
}

TEST(SessionLease, AKilledHeadsSessionIsFreedAfterTheLeaseAndTheSlotServesAnotherHead) {
  const std::string dir = test::temp_path("lease-heads");
  std::filesystem::create_directories(dir);
  const net::KeyPair dead = net::generate_keypair(), next = net::generate_keypair();
  ASSERT_TRUE(net::save_keypair(dir + "/dead.key", dead).ok());
  WorkerProcess w({dead.public_key, next.public_key}, {"--session-lease", "2", "--max-sessions", "1"});
  ASSERT_TRUE(w.ok()) << w.log();
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();

  // Many sequences to the end of the context: a run far longer than the wait before the kill.
  const pid_t head = spawn_cli({"run", "-m", kStories, "--key", dir + "/dead.key", "--workers", w.address().endpoint,
                                "--worker-keys", w.address().public_key, "-c", "512", "-n", "-2",
                                "--parallel", "64", "--temp", "0"},
                               dir + "/head.log", nullptr);
  ASSERT_GT(head, 0);
  ASSERT_TRUE(w.logged_within("loaded in", 20s)) << w.log();
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(waitpid(head, nullptr, WNOHANG), 0) << "the run ended before it could be killed";
  ::kill(head, SIGKILL);
  waitpid(head, nullptr, 0);
  const auto killed = Clock::now();

  // The dead head's session holds the only place until its lease runs out.
  auto second = connect(w, next);
  ASSERT_TRUE(second.ok()) << second.error();
  const Status busy = load_all(*second.value(), *m.value());
  EXPECT_NE(busy.message().find("worker busy"), std::string::npos) << busy.message();

  ASSERT_TRUE(w.logged_within("of head " + dead.public_key + ": freed: its head was silent for 2.", 5s)) << w.log();
  EXPECT_GE(Clock::now() - killed, 1500ms) << "freed before the lease ran out";
  EXPECT_LE(Clock::now() - killed, 3500ms) << "freed long after the lease ran out";

  const Status loaded = load_all(*second.value(), *m.value());
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  auto gens = second.value()->generate({greedy_200()}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, reference_text());
}

TEST(SessionLease, AFrozenWorkerIsNoticedByTheHeadsLinkWithin2_5s) {
  const net::KeyPair head = net::generate_keypair();
  WorkerProcess w({head.public_key}, {});
  ASSERT_TRUE(w.ok()) << w.log();
  net::SecurityOptions sec;
  sec.keys = head;
  auto client = net::Client::connect(w.address().endpoint, w.address().public_key, sec);
  ASSERT_TRUE(client.ok()) << client.error();
  wire::Envelope hello;
  hello.mutable_hello();
  ASSERT_TRUE((*client)->send(hello).ok());
  auto reply = (*client)->receive(5000ms);
  ASSERT_TRUE(reply.ok() && reply.value() && reply.value()->envelope().has_hello_reply());
  EXPECT_EQ(reply.value()->envelope().hello_reply().session_lease_ms(), 30000u) << "the default lease";

  ASSERT_EQ(::kill(w.pid(), SIGSTOP), 0);
  const auto frozen = Clock::now();
  while (!(*client)->disconnected() && Clock::now() - frozen < 6s) std::this_thread::sleep_for(20ms);
  const auto noticed = Clock::now() - frozen;
  ::kill(w.pid(), SIGCONT);
  ASSERT_TRUE((*client)->disconnected()) << "a frozen worker was not noticed within 6 s";
  // The next heartbeat within 0.5 s, its 2 s timeout, and scheduling slack on a loaded machine.
  EXPECT_LE(noticed, 2800ms) << (*client)->disconnect_reason();
  EXPECT_NE((*client)->disconnect_reason().find("heartbeat timeout"), std::string::npos)
      << (*client)->disconnect_reason();
}

TEST(SessionLease, KeepAliveKeepsAnIdleHeadsSessionBeyondTheLease) {
  const net::KeyPair keys = net::generate_keypair();
  WorkerProcess w({keys.public_key}, {"--session-lease", "1"});
  ASSERT_TRUE(w.ok()) << w.log();
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  auto head = connect(w, keys);
  ASSERT_TRUE(head.ok()) << head.error();
  cluster::Head& h = *head.value();
  EXPECT_EQ(h.workers()[0].session_lease, 1000ms);
  EXPECT_EQ(h.keep_alive_interval(), 333ms);
  ASSERT_TRUE(load_all(h, *m.value()).ok());

  // Idle for two and a half leases, renewing the session.
  for (const auto until = Clock::now() + 2500ms; Clock::now() < until;) {
    ASSERT_TRUE(h.keep_alive().ok());
    std::this_thread::sleep_for(h.keep_alive_interval());
  }
  auto gens = h.generate({greedy_200()}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, reference_text());
  EXPECT_EQ(w.log().find("freed"), std::string::npos) << w.log();

  // Without them the session is gone a lease later.
  ASSERT_TRUE(w.logged_within("freed: its head was silent for 1.", 3s)) << w.log();
  gens = h.generate({greedy_200()}, [](size_t, const std::string&) {});
  ASSERT_FALSE(gens[0].status.ok());
  EXPECT_NE(gens[0].status.message().find("unknown session"), std::string::npos) << gens[0].status.message();
}

TEST(SessionLease, ALocalClustersWorkersTakeItsLease) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{"a"}, {"b"}};
  o.session_lease = 1500ms;
  auto cluster = emulate::LocalCluster::start(o);
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  cluster::HeadOptions h;
  h.workers = cluster.value()->addresses();
  h.keys = cluster.value()->head_keys();
  auto head = cluster::Head::connect(h);
  ASSERT_TRUE(head.ok()) << head.error();
  for (const cluster::WorkerInfo& w : head.value()->workers()) EXPECT_EQ(w.session_lease, 1500ms) << w.name;
  EXPECT_EQ(head.value()->keep_alive_interval(), 500ms);
}

}  // namespace
}  // namespace ll
