// The system probes: the /proc/PID/cgroup parser both the memory probe and the emulator read.
#include <gtest/gtest.h>

#include "core/proc_cgroup.h"
#include "core/system_memory.h"

namespace ll {
namespace {

TEST(ProcCgroup, ParsesV1AndV2Lines) {
  const auto groups = parse_proc_cgroup(
      "12:cpu,cpuacct:/user.slice/a\n"
      "4:memory:/docker/abc\n"
      "0::/system.slice/x.service\n"
      "garbage without colons\n"
      "1:name=systemd:/init.scope\n");
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(groups[0].path, "/user.slice/a");
  EXPECT_EQ(groups[1].controllers, (std::vector<std::string>{"memory"}));
  EXPECT_EQ(groups[1].path, "/docker/abc");
  EXPECT_TRUE(groups[2].controllers.empty());
  EXPECT_EQ(groups[2].path, "/system.slice/x.service");
  EXPECT_EQ(groups[3].controllers, (std::vector<std::string>{"name=systemd"}));
}

TEST(ProcCgroup, PathsMayHoldColons) {
  const auto groups = parse_proc_cgroup("3:cpu:/a:b\n");
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].path, "/a:b");
}

TEST(ProcCgroup, OwnGroupOfAMissingControllerIsTheRoot) {
  EXPECT_EQ(own_cgroup_path("no-such-controller"), "/");
}

}  // namespace
}  // namespace ll
