// Devices that join in one step, on a real local network: network namespaces joined by a bridge
// (multicast crosses it), a head in this namespace. Three workers pair by code, are found by
// their beacons and run the model with `run --cluster`; a worker paired with another head is on
// the same network and is not used; forged and replayed beacons are ignored; a wrong or reused
// code is refused. Needs root (skipped without it).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "cli_run.h"
#include "cluster/beacon.h"
#include "cluster/beacon_socket.h"
#include "cluster/model_access.h"
#include "cluster/pairing_code.h"
#include "emulate/netns.h"
#include "net/keys.h"
#include "test_data.h"

extern char** environ;

namespace ll {
namespace {

using namespace std::chrono_literals;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

int sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

// A bridge in this namespace (10.99.N.1/24) and network namespaces on it (10.99.N.11, .12, ...),
// each with one veth port: a switched local network, removed when destroyed.
class BridgedLan {
 public:
  explicit BridgedLan(int hosts) {
    const int pid = getpid();
    subnet_ = fmt::format("10.99.{}", pid % 250);
    bridge_ = fmt::format("llb{}", pid);
    ok_ = sh(fmt::format("ip link add {} type bridge mcast_snooping 0", bridge_)) == 0 &&
          sh(fmt::format("ip addr add {}.1/24 dev {}", subnet_, bridge_)) == 0 &&
          sh(fmt::format("ip link set {} up", bridge_)) == 0;
    for (int i = 0; ok_ && i < hosts; ++i) {
      const std::string ns = fmt::format("llp-{}-{}", pid, i), port = fmt::format("llv{}-{}", pid, i);
      namespaces_.push_back(ns);
      ports_.push_back(port);
      ok_ = sh("ip netns add " + ns) == 0 &&
            sh(fmt::format("ip link add {} type veth peer name eth0 netns {}", port, ns)) == 0 &&
            sh(fmt::format("ip link set {} master {} up", port, bridge_)) == 0 &&
            sh(fmt::format("ip -n {} addr add {} dev eth0", ns, address(i) + "/24")) == 0 &&
            sh(fmt::format("ip -n {} link set eth0 up", ns)) == 0 && sh(fmt::format("ip -n {} link set lo up", ns)) == 0;
    }
  }
  ~BridgedLan() {
    for (const std::string& p : ports_) sh("ip link del " + p);
    for (const std::string& ns : namespaces_) sh("ip netns del " + ns);
    sh("ip link del " + bridge_);
  }
  bool ok() const { return ok_; }
  std::string head_address() const { return subnet_ + ".1"; }
  std::string address(int i) const { return fmt::format("{}.{}", subnet_, 11 + i); }
  const std::string& netns(int i) const { return namespaces_[i]; }

 private:
  bool ok_ = false;
  std::string subnet_, bridge_;
  std::vector<std::string> namespaces_, ports_;
};

// A `lingualinked` process (in a namespace when `netns` is given) with its own configuration
// directory; stdout and stderr go to files. Ended (SIGTERM) when destroyed.
class CliProcess {
 public:
  CliProcess(const std::string& netns, const std::string& config, const std::vector<std::string>& args,
             const std::string& label) {
    out_ = test::temp_path(label + ".out");
    err_ = test::temp_path(label + ".err");
    std::vector<std::string> argv;
    if (!netns.empty()) argv = {"/usr/sbin/ip", "netns", "exec", netns};
    argv.insert(argv.end(), {"/usr/bin/env", "XDG_CONFIG_HOME=" + config, LL_CLI_PATH});
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (std::string& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int rc = posix_spawn(&pid_, c[0], &actions, nullptr, c.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << argv[0];
    if (rc != 0) pid_ = -1;
  }
  ~CliProcess() { stop(); }
  void stop() {
    if (pid_ <= 0 || exited_) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 50 && waitpid(pid_, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(100ms);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    exited_ = true;
  }
  // The exit status once it ends within `timeout`; -1 if it does not.
  int wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      }
      std::this_thread::sleep_for(50ms);
    }
    return -1;
  }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }
  // Waits until stdout holds `n` lines.
  bool wait_for_lines(size_t n, std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string o = out();
      if (static_cast<size_t>(std::count(o.begin(), o.end(), '\n')) >= n) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

 private:
  static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string out_, err_;
};

std::vector<std::string> codes_in(const std::string& out) {
  std::vector<std::string> codes;
  const std::regex code("code (LL1-[0-9A-Z-]+) qr LINGUALINKED:[0-9A-Z]+");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), code); it != std::sregex_iterator(); ++it) {
    codes.push_back((*it)[1]);
  }
  return codes;
}

std::string fresh_dir(const std::string& name) {
  const std::string d = test::temp_path(name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// One line of `devices` output for `name`, or "".
std::string device_line(const std::string& listing, const std::string& name) {
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  return "";
}

// `lingualinked ARGS` as the head whose configuration is under `config`.
test::CliOutcome run_as_head(const std::string& config, const std::string& args, int timeout_seconds = 60) {
  setenv("XDG_CONFIG_HOME", config.c_str(), 1);
  test::CliOutcome o = test::run_cli(args, timeout_seconds);
  unsetenv("XDG_CONFIG_HOME");
  return o;
}

TEST(PairingE2E, ThreeDevicesPairByCodeAreFoundAndRunTheModelWithCluster) {
  if (Status st = emulate::ShapedLink::available(); !st.ok()) GTEST_SKIP() << st.message();
  BridgedLan lan(4);
  ASSERT_TRUE(lan.ok()) << "cannot build the bridged network";
  const std::string head = fresh_dir("head-config"), other_head = fresh_dir("other-head-config");
  const std::string models = cluster::model_directory(kStories);

  CliProcess pair("", head, {"pair", "-n", "3", "--listen", "tcp://" + lan.head_address() + ":0", "--expires", "120"}, "pair");
  ASSERT_TRUE(pair.wait_for_lines(3, 10s)) << pair.err();
  const std::vector<std::string> codes = codes_in(pair.out());
  ASSERT_EQ(codes.size(), 3u) << pair.out();

  // A wrong code (right head, wrong secret, valid check) is refused by the head.
  {
    auto parsed = cluster::parse_pairing_code(codes[2]);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    parsed->secret[0] ^= 1;
    CliProcess wrong(lan.netns(3), fresh_dir("wrong-config"),
                     {"worker", "--join", cluster::format_pairing_code(*parsed), "--name", "intruder"}, "wrong");
    EXPECT_EQ(wrong.wait(20s), 1);
    EXPECT_NE(wrong.err().find("wrong code"), std::string::npos) << wrong.err();
  }
  std::vector<std::unique_ptr<CliProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<CliProcess>(
        lan.netns(i), fresh_dir(fmt::format("w{}-config", i + 1)),
        std::vector<std::string>{"worker", "--join", codes[i], "--name", fmt::format("w{}", i + 1), "--models", models,
                                 "-t", "1"},
        fmt::format("w{}", i + 1)));
    if (i == 0) {
      // A used code is refused: wait until w1 has paired, then try its code again.
      ASSERT_TRUE(workers[0]->wait_for_lines(1, 20s)) << workers[0]->err();
      CliProcess reused(lan.netns(3), fresh_dir("reused-config"), {"worker", "--join", codes[0], "--name", "copycat"},
                        "reused");
      EXPECT_EQ(reused.wait(20s), 1);
      EXPECT_NE(reused.err().find("already used"), std::string::npos) << reused.err();
    }
  }
  ASSERT_EQ(pair.wait(30s), 0) << pair.err();
  for (int i = 1; i <= 3; ++i) EXPECT_NE(pair.out().find(fmt::format("paired w{}\n", i)), std::string::npos) << pair.out();
  EXPECT_NE(pair.err().find("wrong code"), std::string::npos) << pair.err();
  EXPECT_NE(pair.err().find("already used"), std::string::npos) << pair.err();

  // A worker paired with another head, on the same network, beaconing too.
  CliProcess other_pair("", other_head, {"pair", "--listen", "tcp://" + lan.head_address() + ":0"}, "other-pair");
  ASSERT_TRUE(other_pair.wait_for_lines(1, 10s)) << other_pair.err();
  CliProcess stranger(lan.netns(3), fresh_dir("w4-config"),
                      {"worker", "--join", codes_in(other_pair.out()).at(0), "--name", "w4", "--models", models, "-t", "1"},
                      "w4");
  ASSERT_EQ(other_pair.wait(30s), 0) << other_pair.err();
  for (auto& w : workers) ASSERT_TRUE(w->wait_for_lines(1, 20s)) << w->err();

  // Capture a real beacon of w1 now, to replay it once w1 is gone.
  auto receiver = cluster::BeaconReceiver::open(cluster::kBeaconPort);
  ASSERT_TRUE(receiver.ok()) << receiver.error();
  std::string w1_beacon;
  const std::string w1_ip = lan.address(0);
  for (auto until = std::chrono::steady_clock::now() + 10s; w1_beacon.empty() && std::chrono::steady_clock::now() < until;) {
    auto got = (*receiver)->receive(200ms);
    ASSERT_TRUE(got.ok()) << got.error();
    if (got.value() && got.value()->source_ip == w1_ip) w1_beacon = got.value()->packet;
  }
  ASSERT_FALSE(w1_beacon.empty()) << "no beacon from w1 reached the head's network";

  // Listed: the three paired devices reachable at their namespace's address, the stranger not at all.
  {
    auto listing = run_as_head(head, "devices --wait 4");
    ASSERT_EQ(listing.exit_code, 0) << listing.err;
    for (int i = 0; i < 3; ++i) {
      const std::string line = device_line(listing.out, fmt::format("w{}", i + 1));
      EXPECT_NE(line.find("yes"), std::string::npos) << listing.out;
      EXPECT_NE(line.find(fmt::format("tcp://{}:7070", lan.address(i))), std::string::npos) << listing.out;
    }
    EXPECT_EQ(listing.out.find("w4"), std::string::npos) << listing.out;
    // The stranger does beacon: its own head hears it.
    auto its_own = run_as_head(other_head, "devices --wait 4");
    ASSERT_EQ(its_own.exit_code, 0) << its_own.err;
    EXPECT_NE(device_line(its_own.out, "w4").find("yes"), std::string::npos) << its_own.out;
  }

  // The everyday command: no addresses, no keys.
  {
    auto run = run_as_head(head, fmt::format("run --cluster -m '{}' --temp 0 -n 200 --planner even", kStories), 300);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")) + "\n");
    EXPECT_NE(run.err.find("3 of 3 paired devices reachable"), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find(lan.address(3)), std::string::npos) << "the stranger was used:\n" << run.err;
    for (int i = 0; i < 3; ++i) EXPECT_NE(run.err.find(lan.address(i)), std::string::npos) << run.err;
  }

  // `plan --cluster` profiles the same devices.
  {
    auto plan = run_as_head(head, fmt::format("plan --cluster -m '{}'", kStories), 120);
    ASSERT_EQ(plan.exit_code, 0) << plan.err;
    for (int i = 1; i <= 3; ++i) EXPECT_NE(plan.out.find(fmt::format("w{} ", i)), std::string::npos) << plan.out;
    EXPECT_EQ(plan.out.find("w4"), std::string::npos) << plan.out;
  }

  // Forged beacons for w2 (signed by another key, pointing elsewhere) and w1's old beacon
  // replayed after w1 stopped: w2 stays where it is, w1 is not reachable.
  workers[0]->stop();
  std::atomic<bool> sending{true};
  std::thread forger([&] {
    auto sender = cluster::BeaconSender::open(cluster::kBeaconPort);
    if (!sender.ok()) return;
    const net::KeyPair forger_keys = net::generate_keypair();
    auto w2_keys = net::load_keypair(test::temp_path("w2-config") + "/lingualinked/worker.key");
    if (!w2_keys.ok()) return;
    while (sending.load()) {
      cluster::Beacon fake;
      fake.public_key = w2_keys->public_key;
      fake.port = 9999;
      fake.time_ms = cluster::unix_millis();
      (void)(*sender)->send(cluster::sign_beacon(fake, cluster::beacon_signing_keys(forger_keys)));
      (void)(*sender)->send(w1_beacon);
      std::this_thread::sleep_for(200ms);
    }
  });
  auto listing = run_as_head(head, "devices --wait 3");
  sending.store(false);
  forger.join();
  ASSERT_EQ(listing.exit_code, 0) << listing.err;
  EXPECT_NE(device_line(listing.out, "w1").find(" no "), std::string::npos) << listing.out;
  EXPECT_NE(device_line(listing.out, "w2").find(fmt::format("tcp://{}:7070", lan.address(1))), std::string::npos)
      << listing.out;
  // Owner-only, everything the head remembers.
  for (const auto& f : std::filesystem::directory_iterator(head + "/lingualinked")) {
    EXPECT_EQ(static_cast<int>(f.status().permissions() & std::filesystem::perms::all), 0600) << f.path();
  }
  // The speed each device was profiled at in the run.
  EXPECT_NE(device_line(listing.out, "w2").find("tok/s"), std::string::npos) << listing.out;
  EXPECT_NE(listing.err.find("bad signature"), std::string::npos) << listing.err;
  EXPECT_NE(listing.err.find("replayed"), std::string::npos) << listing.err;
}

}  // namespace
}  // namespace ll
