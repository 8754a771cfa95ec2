// Emulated devices whose speed changes while they run (cpu=...@..., busy=...@...): a local
// cluster's schedule changes the device's CPU quota and starts and ends busy processes in its
// cgroup at the given times, and stop() leaves nothing behind (needs root; skipped without it).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/proc_cgroup.h"
#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "emulated_devices.h"

namespace ll {
namespace {

using Clock = std::chrono::steady_clock;
using emulate::LocalCluster;
using emulate::ScheduleChange;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// The directory of a process's group in the cgroup v1 cpu hierarchy.
std::string cpu_cgroup_dir(pid_t pid) {
  for (const CgroupMembership& m : parse_proc_cgroup(read_text(fmt::format("/proc/{}/cgroup", pid)))) {
    if (std::find(m.controllers.begin(), m.controllers.end(), "cpu") != m.controllers.end()) {
      return "/sys/fs/cgroup/cpu" + m.path;
    }
  }
  return "";
}

std::vector<pid_t> processes_in(const std::string& dir) {
  std::vector<pid_t> pids;
  std::istringstream in(read_text(dir + "/cgroup.procs"));
  for (pid_t pid; in >> pid;) pids.push_back(pid);
  std::sort(pids.begin(), pids.end());
  return pids;
}

pid_t parent_of(pid_t pid) {
  // /proc/PID/stat: "pid (comm) state ppid ..."; comm is ours, without ')'.
  const std::string stat = read_text(fmt::format("/proc/{}/stat", pid));
  std::istringstream rest(stat.substr(stat.rfind(')') + 1));
  std::string state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

class Changes {
 public:
  void add(const ScheduleChange& c) {
    std::lock_guard lock(mutex_);
    changes_.push_back(c);
  }
  // The changes once there are `n` of them (fewer if they do not come within a few seconds).
  std::vector<ScheduleChange> wait_for(size_t n) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (changes_.size() >= n) return changes_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::lock_guard lock(mutex_);
    return changes_;
  }

 private:
  std::mutex mutex_;
  std::vector<ScheduleChange> changes_;
};

TEST(SpeedScheduleE2E, QuotaAndBusyProcessFollowTheSchedule) {
  if (geteuid() != 0) GTEST_SKIP() << "cgroups need root";
  const std::string name = "sched";
  auto cluster = test::start_devices(name + ":threads=1,cpu=0.5@0s/0.15@300ms/0.5@600ms,busy=1@300ms/0@600ms");
  ASSERT_TRUE(cluster);
  const pid_t worker = cluster->pid(0);
  const std::string dir = cpu_cgroup_dir(worker);
  ASSERT_EQ(std::filesystem::path(dir).filename().string(), fmt::format("lingualinked-{}-{}", getpid(), name));
  // The first share is in effect from the start: 0.5 core over the 4 ms period.
  EXPECT_EQ(read_text(dir + "/cpu.cfs_period_us"), "4000");
  EXPECT_EQ(read_text(dir + "/cpu.cfs_quota_us"), "2000");
  EXPECT_EQ(processes_in(dir), std::vector<pid_t>{worker});

  Changes changes;
  ASSERT_TRUE(cluster->start_schedules([&](const ScheduleChange& c) { changes.add(c); }).ok());
  auto again = cluster->start_schedules({});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("already started"), std::string::npos) << again.message();

  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(changes.wait_for(0).empty()) << "a change before its time";
  EXPECT_EQ(read_text(dir + "/cpu.cfs_quota_us"), "2000");

  // At 0.3 s: 0.15 core (the quota at the kernel's 1 ms, over a longer period) and one busy
  // process, a child of this process, in the device's cgroup.
  auto at_300ms = changes.wait_for(2);
  ASSERT_EQ(at_300ms.size(), 2u);
  EXPECT_EQ(at_300ms[0].label, name + ": cpu 0.15");
  EXPECT_EQ(at_300ms[1].label, name + ": 1 busy process");
  for (const ScheduleChange& c : at_300ms) {
    EXPECT_EQ(c.device, 0u);
    EXPECT_GE(c.seconds, 0.3);
    EXPECT_LT(c.seconds, 0.5);
  }
  EXPECT_EQ(read_text(dir + "/cpu.cfs_period_us"), "6666");
  EXPECT_EQ(read_text(dir + "/cpu.cfs_quota_us"), "1000");
  const std::vector<pid_t> procs = processes_in(dir);
  ASSERT_EQ(procs.size(), 2u);
  const pid_t busy = procs[0] == worker ? procs[1] : procs[0];
  EXPECT_EQ(parent_of(busy), getpid());
  EXPECT_EQ(read_text(fmt::format("/proc/{}/stat", busy)).find(") Z"), std::string::npos) << "a zombie";

  // At 0.6 s: back to 0.5 core, and the busy process killed and reaped.
  auto at_600ms = changes.wait_for(4);
  ASSERT_EQ(at_600ms.size(), 4u);
  EXPECT_EQ(at_600ms[2].label, name + ": cpu 0.5");
  EXPECT_EQ(at_600ms[3].label, name + ": 0 busy processes");
  EXPECT_GE(at_600ms[2].seconds, 0.6);
  EXPECT_LT(at_600ms[3].seconds, 0.8);
  EXPECT_EQ(read_text(dir + "/cpu.cfs_period_us"), "4000");
  EXPECT_EQ(read_text(dir + "/cpu.cfs_quota_us"), "2000");
  EXPECT_EQ(processes_in(dir), std::vector<pid_t>{worker});
  EXPECT_FALSE(std::filesystem::exists(fmt::format("/proc/{}", busy))) << "not reaped";
}

TEST(SpeedScheduleE2E, StopEndsTheBusyProcessesAndRemovesTheCgroup) {
  if (geteuid() != 0) GTEST_SKIP() << "cgroups need root";
  const std::string name = "busy";
  // No cpu share: a cgroup still holds the worker and its busy processes.
  auto cluster = test::start_devices(name + ":threads=1,busy=2@0s/0@30s");
  ASSERT_TRUE(cluster);
  const std::string dir = cpu_cgroup_dir(cluster->pid(0));
  ASSERT_EQ(std::filesystem::path(dir).filename().string(), fmt::format("lingualinked-{}-{}", getpid(), name));
  EXPECT_EQ(read_text(dir + "/cpu.cfs_quota_us"), "-1");
  Changes changes;
  ASSERT_TRUE(cluster->start_schedules([&](const ScheduleChange& c) { changes.add(c); }).ok());
  auto started = changes.wait_for(1);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].label, name + ": 2 busy processes");
  const std::vector<pid_t> procs = processes_in(dir);
  ASSERT_EQ(procs.size(), 3u);

  cluster->stop();
  for (pid_t pid : procs) EXPECT_FALSE(std::filesystem::exists(fmt::format("/proc/{}", pid))) << pid << " not reaped";
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(changes.wait_for(0).size(), 1u) << "no change after stop()";
  auto after = cluster->start_schedules({});
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.message().find("has stopped"), std::string::npos) << after.message();
}

}  // namespace
}  // namespace ll
