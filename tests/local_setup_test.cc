// The options of a local cluster of this executable: threads shared out among the devices,
// the devices described, a log file per run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/thread_pool.h"
#include "emulate/local_setup.h"

namespace ll::emulate {
namespace {

TEST(LocalSetup, GivenThreadsAreKept) {
  EXPECT_EQ(threads_per_device(4, 3), 4);
  EXPECT_EQ(threads_per_device(1, 64), 1);
}

TEST(LocalSetup, TheCoresAreSharedOutAmongTheDevices) {
  const int cores = default_thread_count();
  EXPECT_EQ(threads_per_device(0, 1), cores);
  EXPECT_EQ(threads_per_device(0, 2), std::max(1, cores / 2));
  EXPECT_EQ(threads_per_device(0, static_cast<size_t>(cores) + 1), 1);  // never none
}

TEST(LocalSetup, OptionsHoldTheDevicesThisProgramAndALog) {
  auto o = local_cluster_options("fast:cpu=1.0,threads=2;slow:cpu=0.5", 0, "demo");
  ASSERT_TRUE(o.ok()) << o.error();
  ASSERT_EQ(o->devices.size(), 2u);
  EXPECT_EQ(o->devices[0].name, "fast");
  EXPECT_EQ(o->devices[0].threads, 2);
  EXPECT_EQ(o->default_threads, threads_per_device(0, 2));
  EXPECT_EQ(o->cli_path, std::filesystem::read_symlink("/proc/self/exe").string());
  EXPECT_EQ(std::filesystem::path(o->log_path).filename().string(),
            "lingualinked-demo-" + std::to_string(getpid()) + ".log");

  auto counted = local_cluster_options("3", 2, "bench");
  ASSERT_TRUE(counted.ok()) << counted.error();
  EXPECT_EQ(counted->devices.size(), 3u);
  EXPECT_EQ(counted->default_threads, 2);
}

TEST(LocalSetup, DevicesMayChangeSpeed) {
  auto o = local_cluster_options("a;b:cpu=0.5@0s/0.15@3s/0.5@20s;c:busy=1@3s/0@20s", 0, "demo");
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->devices[1].cpu, 0.5);
  EXPECT_EQ(o->devices[1].schedule.cpu.size(), 3u);
  EXPECT_EQ(o->devices[2].schedule.busy.size(), 2u);
}

TEST(LocalSetup, BadDevicesAreAnError) {
  EXPECT_FALSE(local_cluster_options("fast:cpu=lots", 0, "demo").ok());
}

}  // namespace
}  // namespace ll::emulate
