// Faults of emulated devices' workers: a kill reaps the worker and its head sees the link lost;
// a freeze stops the process until a thaw; a restart brings a killed worker back at its address
// with its key (a head pinning the key connects again) or with a fresh key the head refuses; a
// fail= schedule runs them at their times and reports each.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "emulated_devices.h"
#include "net/transport.h"
#include "wire.pb.h"

namespace ll {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using emulate::LocalCluster;
using emulate::ScheduleChange;

// A head's link to worker i, pinning `worker_key`.
std::unique_ptr<net::Client> link_to(const LocalCluster& cluster, size_t i, const std::string& worker_key) {
  net::SecurityOptions s;
  s.keys = cluster.head_keys();
  auto client = net::Client::connect(cluster.addresses()[i].endpoint, worker_key, s);
  EXPECT_TRUE(client.ok()) << client.error();
  return client.ok() ? std::move(client).value() : nullptr;
}

// The worker's name from its HelloReply, or "" when none comes within `timeout`.
std::string hello(net::Client& client, std::chrono::milliseconds timeout = 5s) {
  wire::Envelope e;
  e.mutable_hello()->set_client("fault test");
  if (!client.send(e).ok()) return "";
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !client.disconnected()) {
    auto m = client.receive(50ms);
    if (m.ok() && m->has_value() && (*m)->envelope().has_hello_reply()) return (*m)->envelope().hello_reply().worker();
  }
  return "";
}

bool disconnected_within(net::Client& client, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!client.disconnected() && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  return client.disconnected();
}

// The state letter of /proc/PID/stat ("pid (comm) S ..."): 'T' stopped, 'S' sleeping, 'R' running.
char state_of(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::stringstream s;
  s << in.rdbuf();
  const std::string stat = s.str();
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// The state once it is (or is not) `stopped`, within a second.
char state_once(pid_t pid, bool stopped) {
  const auto deadline = Clock::now() + 1s;
  char state = state_of(pid);
  while (((state == 'T') != stopped) && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    state = state_of(pid);
  }
  return state;
}

bool exists(pid_t pid) { return std::filesystem::exists(fmt::format("/proc/{}", pid)); }

TEST(WorkerFaultsE2E, KillReapsTheWorkerAndItsHeadSeesTheLinkLost) {
  auto cluster = test::start_devices("a:threads=1;b:threads=1");
  ASSERT_TRUE(cluster);
  auto head = link_to(*cluster, 0, cluster->addresses()[0].public_key);
  ASSERT_TRUE(head);
  ASSERT_EQ(hello(*head), "a");
  const pid_t killed = cluster->pid(0), other = cluster->pid(1);

  ASSERT_TRUE(cluster->kill(0).ok());
  EXPECT_EQ(cluster->pid(0), -1);
  EXPECT_FALSE(exists(killed)) << "killed but not reaped";
  EXPECT_TRUE(disconnected_within(*head, 2s)) << "the head did not see its link lost";
  const Status again = cluster->kill(0);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.message(), "worker a is not running: there is nothing to kill");
  EXPECT_EQ(cluster->freeze(0).message(), "worker a is not running: there is nothing to freeze");

  cluster->stop();  // the dead worker is skipped, the other one ends
  EXPECT_FALSE(exists(other));
}

TEST(WorkerFaultsE2E, FreezeStopsTheProcessAndThawRunsItAgain) {
  auto cluster = test::start_devices("a:threads=1");
  ASSERT_TRUE(cluster);
  const pid_t worker = cluster->pid(0);
  ASSERT_TRUE(cluster->freeze(0).ok());
  EXPECT_EQ(state_once(worker, true), 'T');
  auto head = link_to(*cluster, 0, cluster->addresses()[0].public_key);
  ASSERT_TRUE(head);
  EXPECT_EQ(hello(*head, 300ms), "") << "a frozen worker answered";

  ASSERT_TRUE(cluster->thaw(0).ok());
  EXPECT_NE(state_once(worker, false), 'T');
  EXPECT_EQ(hello(*head), "a");  // and the hello sent while it was frozen is answered too

  ASSERT_TRUE(cluster->freeze(0).ok());
  cluster->stop();  // a frozen worker still ends
  EXPECT_FALSE(exists(worker));
}

TEST(WorkerFaultsE2E, ARestartedWorkerHasItsAddressAndKeySoAPinnedHeadConnectsAgain) {
  auto cluster = test::start_devices("a:threads=1");
  ASSERT_TRUE(cluster);
  const cluster::WorkerAddress address = cluster->addresses()[0];
  const pid_t first = cluster->pid(0);
  const Status running = cluster->restart(0);
  ASSERT_FALSE(running.ok());
  EXPECT_EQ(running.message(), "worker a is still running: kill it before a restart");

  auto before = link_to(*cluster, 0, address.public_key);  // a connection the kill leaves behind on the port
  ASSERT_TRUE(before);
  ASSERT_EQ(hello(*before), "a");

  ASSERT_TRUE(cluster->kill(0).ok());
  const Status restarted = cluster->restart(0);
  ASSERT_TRUE(restarted.ok()) << restarted.message();
  EXPECT_GT(cluster->pid(0), 0);
  EXPECT_NE(cluster->pid(0), first);
  EXPECT_EQ(cluster->addresses()[0].endpoint, address.endpoint);
  auto head = link_to(*cluster, 0, address.public_key);
  ASSERT_TRUE(head);
  EXPECT_EQ(hello(*head), "a");

  // The key pair came over a pipe: the command line names only the descriptor.
  std::ifstream cmdline(fmt::format("/proc/{}/cmdline", cluster->pid(0)));
  std::stringstream args;
  args << cmdline.rdbuf();
  EXPECT_NE(args.str().find(std::string("--key-fd") + '\0'), std::string::npos);
  EXPECT_EQ(args.str().find(std::string("--key") + '\0'), std::string::npos);
}

TEST(WorkerFaultsE2E, AWorkerRestartedWithANewKeyIsRefusedByTheHeadPinningTheOld) {
  auto cluster = test::start_devices("a:threads=1");
  ASSERT_TRUE(cluster);
  const std::string pinned = cluster->addresses()[0].public_key;
  ASSERT_TRUE(cluster->kill(0).ok());
  ASSERT_TRUE(cluster->restart(0, /*new_key=*/true).ok());
  auto head = link_to(*cluster, 0, pinned);
  ASSERT_TRUE(head);
  EXPECT_EQ(hello(*head, 3s), "");
  EXPECT_TRUE(head->disconnected()) << "the handshake with the new key did not fail";
  EXPECT_FALSE(head->disconnect_reason().empty());
}

TEST(WorkerFaultsE2E, ALinkOnLoopbackCannotBeCut) {
  auto cluster = test::start_devices("a:threads=1");
  ASSERT_TRUE(cluster);
  EXPECT_EQ(cluster->cut_link(0).message(),
            "worker a runs on loopback, not in a network namespace, so its link cannot be cut: give its device a drop "
            "fault (fail=drop@...) or a link rate (bw=)");
}

class Changes {
 public:
  void add(const ScheduleChange& c) {
    std::lock_guard lock(mutex_);
    changes_.push_back(c);
  }
  // The changes once there are `n` of them (fewer if they do not come within a few seconds).
  std::vector<ScheduleChange> wait_for(size_t n) {
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (changes_.size() >= n) return changes_;
      }
      std::this_thread::sleep_for(2ms);
    }
    std::lock_guard lock(mutex_);
    return changes_;
  }

 private:
  std::mutex mutex_;
  std::vector<ScheduleChange> changes_;
};

TEST(WorkerFaultsE2E, AFailScheduleRunsItsFaultsAndReportsEach) {
  auto cluster = test::start_devices("a:threads=1,fail=stop@200ms+300ms;b:threads=1,fail=kill@100ms,restart@700ms");
  ASSERT_TRUE(cluster);
  const pid_t a = cluster->pid(0);
  Changes changes;
  ASSERT_TRUE(cluster->start_schedules([&](const ScheduleChange& c) { changes.add(c); }).ok());
  const auto all = changes.wait_for(4);
  ASSERT_EQ(all.size(), 4u);
  const std::pair<const char*, double> expected[] = {
      {"b: killed", 0.1}, {"a: frozen", 0.2}, {"a: thawed", 0.5}, {"b: restarted", 0.7}};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(all[k].label, expected[k].first);
    EXPECT_TRUE(all[k].fault);
    EXPECT_EQ(all[k].device, all[k].label[0] == 'a' ? 0u : 1u);
    EXPECT_GE(all[k].seconds, expected[k].second) << all[k].label;
    // Stamped when the step began: a peer sees a kill before kill() returns, and a restart's new
    // worker takes longer still to come up.
    EXPECT_LT(all[k].seconds, expected[k].second + 0.15) << all[k].label;
  }
  EXPECT_NE(state_of(a), 'T');
  auto head = link_to(*cluster, 1, cluster->addresses()[1].public_key);
  ASSERT_TRUE(head);
  EXPECT_EQ(hello(*head), "b");  // the restart's worker, alive past the schedule's last step
}

// A fault's time is when it was applied, not when applying it returned: a kill's worker is gone
// (its links closed) before kill() has reaped it, and a recovery traced to the kill must not seem
// to come before it (cluster-bench once reported one with no cause that way).
TEST(WorkerFaultsE2E, AKillIsStampedNoLaterThanItsWorkerExits) {
  auto cluster = test::start_devices("a:threads=1,fail=kill@50ms;b:threads=1,fail=kill@100ms;c:threads=1,fail=kill@150ms");
  ASSERT_TRUE(cluster);
  const std::vector<pid_t> pids = {cluster->pid(0), cluster->pid(1), cluster->pid(2)};
  std::vector<double> exited(pids.size(), -1);
  Changes changes;
  const auto began = Clock::now();  // no later than the schedules' own start
  ASSERT_TRUE(cluster->start_schedules([&](const ScheduleChange& c) { changes.add(c); }).ok());
  // Watch for each worker's exit (a zombie, or gone once reaped) as closely as the host allows.
  while (Clock::now() - began < 3s) {
    bool all = true;
    for (size_t i = 0; i < pids.size(); ++i) {
      if (exited[i] >= 0) continue;
      const char state = state_of(pids[i]);
      if (state == 'Z' || state == 'X' || state == '?') {
        exited[i] = std::chrono::duration<double>(Clock::now() - began).count();
      } else {
        all = false;
      }
    }
    if (all) break;
  }
  const auto all = changes.wait_for(3);
  ASSERT_EQ(all.size(), 3u);
  for (const ScheduleChange& c : all) {
    ASSERT_LT(c.device, pids.size());
    ASSERT_GE(exited[c.device], 0) << c.label << ": the worker did not exit";
    EXPECT_LE(c.seconds, exited[c.device]) << c.label;
  }
}

}  // namespace
}  // namespace ll
