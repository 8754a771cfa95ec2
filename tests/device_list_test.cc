// The one grammar of `--devices`: every setting parsed, and each command told which it can use.
#include "core/device_list.h"

#include <gtest/gtest.h>

namespace ll {
namespace {

using enum DeviceSetting;

TEST(DeviceList, EverySettingOfTheGrammar) {
  auto d = parse_device_list("a:cpu=0.5,speed=2,mem=1G,threads=2,bw=20mbit,cores=0;b",
                             {Cpu, Speed, Mem, Threads, Bw, Cores});
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_EQ(d->size(), 2u);
  const DeviceDescription& a = (*d)[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.cpu, 0.5);
  EXPECT_EQ(a.speed, 2.0);
  EXPECT_EQ(a.memory, 1ull << 30);
  EXPECT_EQ(a.threads, 2);
  EXPECT_EQ(a.link_bps, 20'000'000u);
  EXPECT_EQ(a.cores, std::vector<int>{0});
  const DeviceDescription& b = (*d)[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_FALSE(b.cpu || b.speed || b.memory || b.threads || b.link_bps);
}

TEST(DeviceList, ACountNamesEqualDevices) {
  auto d = parse_device_list("3", {Speed});
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[2].name, "dev3");
  EXPECT_FALSE(parse_device_list("0", {Speed}).ok());
  EXPECT_FALSE(parse_device_list("65", {Speed}).ok());
}

TEST(DeviceList, ASettingTheCommandCannotUseIsAnErrorNamingThoseItCan) {
  auto r = parse_device_list("a:speed=0.5", {Cpu, Mem});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("cannot use speed="), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("cpu, mem"), std::string::npos) << r.error();
  auto unknown = parse_device_list("a:fast=1", {Speed, Mem});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("unknown setting 'fast=1' (speed, mem)"), std::string::npos) << unknown.error();
}

TEST(DeviceList, BadNamesAndValuesAreRejected) {
  for (const char* text : {"", ";", "a b", ":speed=1", "a;a", "a:speed=0", "a:speed=x", "a:mem=4X", "a:cpu=-1",
                           "a:threads=0", "a:threads=1.5"}) {
    EXPECT_FALSE(parse_device_list(text, {Cpu, Speed, Mem, Threads}).ok()) << text;
  }
}

TEST(DeviceList, AHostIsAHostName) {
  auto d = parse_device_list("a:host=pi-1;b:host=Phone2;c", {Host});
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d.value()[0].host, "pi-1");
  EXPECT_EQ(d.value()[1].host, "Phone2");
  EXPECT_EQ(d.value()[2].host, "");
  for (const std::string& bad : std::vector<std::string>{"a:host=", "a:host=-x", "a:host=a.b", "a:host=a_b", "a:host=" + std::string(64, 'h')}) {
    auto r = parse_device_list(bad, {Host});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().find("device a: host '"), std::string::npos) << r.error();
    EXPECT_NE(r.error().find("' is not a host name (letters, digits and '-', at most 63)"), std::string::npos) << r.error();
  }
}

TEST(DeviceList, SchedulesOfSharesAndBusyProcesses) {
  auto d = parse_device_list("b:cpu=0.5@0s/0.15@3s/0.5@20s,busy=1@300ms/0@20s;c:cpu=0.5;e:busy=2@0s", {Cpu, Busy});
  ASSERT_TRUE(d.ok()) << d.error();
  const DeviceDescription& b = (*d)[0];
  EXPECT_EQ(b.cpu, 0.5);  // the first share is the one it starts with
  EXPECT_EQ(b.cpu_schedule, (std::vector<TimedValue>{{0, 0.5}, {3, 0.15}, {20, 0.5}}));
  EXPECT_EQ(b.busy_schedule, (std::vector<TimedValue>{{0.3, 1}, {20, 0}}));
  const DeviceDescription& c = (*d)[1];
  EXPECT_EQ(c.cpu, 0.5);
  EXPECT_TRUE(c.cpu_schedule.empty() && c.busy_schedule.empty());
  const DeviceDescription& e = (*d)[2];
  EXPECT_FALSE(e.cpu);
  EXPECT_EQ(e.busy_schedule, (std::vector<TimedValue>{{0, 2}}));
}

TEST(DeviceList, BadSchedulesSayWhatIsWrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"b:cpu=0.5@0s/0.15@3s/0.2@3s", "device b: cpu schedule '0.5@0s/0.15@3s/0.2@3s': times must increase, but 3s follows 3s"},
      {"b:cpu=0.5@0s/0.15@3s/0.2@1s", "times must increase, but 1s follows 3s"},
      {"b:busy=1@2s/0@500ms", "times must increase, but 500ms follows 2s"},
      {"b:cpu=0.5@3s/0.2@4s", "its first share is the one it starts with, so it is at 0s"},
      {"b:cpu=-0.5@0s", "'-0.5' is not a non-negative number"},
      {"b:cpu=0@0s", "cpu share 0 is not between 0.01 and 256 cores"},
      {"b:cpu=0.5@0s/1000@3s", "cpu share 1000 is not between 0.01 and 256 cores"},
      {"b:cpu=0.001", "cpu share 0.001 is not between 0.01 and 256 cores"},
      {"b:cpu=abc@0s", "'abc' is not a non-negative number"},
      {"b:cpu=0.5@0s/", "'' is not VALUE@TIME (e.g. cpu=0.5@0s/0.15@3s)"},
      {"b:cpu=0.5@0s/0.2", "'0.2' is not VALUE@TIME"},
      {"b:cpu=0.5@0s@1s", "'0.5@0s@1s' is not VALUE@TIME"},
      {"b:cpu=0.5@0s//0.2@1s", "'' is not VALUE@TIME"},
      {"b:cpu=0.5@xs", "'xs' is not a number >= 0 (e.g. 0.5ms)"},
      {"b:cpu=0.5@0s/0.2@-1s", "'-1s' is not a number >= 0 (e.g. 0.5ms)"},
      {"b:busy=2", "device b: busy schedule '2': '2' is not VALUE@TIME (e.g. busy=1@3s/0@20s)"},
      {"b:busy=", "'' is not VALUE@TIME"},
      {"b:busy=1.5@1s", "1.5 is not a number of processes from 0 to 64"},
      {"b:busy=65@1s", "65 is not a number of processes from 0 to 64"},
      {"b:busy=1@100000s", "100000s is more than a day"},
  };
  for (const auto& [text, fragment] : bad) {
    auto r = parse_device_list(text, {Cpu, Busy});
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().find(fragment), std::string::npos) << text << ": " << r.error();
  }
  auto what_if = parse_device_list("a:busy=1@1s", {Speed, Mem});
  ASSERT_FALSE(what_if.ok());
  EXPECT_NE(what_if.error().find("cannot use busy="), std::string::npos) << what_if.error();
}

TEST(DeviceList, FailSchedulesOfKillsFreezesAndDrops) {
  auto d = parse_device_list("a:fail=kill@5s,restart@12s,cpu=0.5;b:fail=stop@200ms+3s/drop@4s+1s/stop@8s;c:fail=drop@1s",
                             {Cpu, Fail});
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ((*d)[0].fail_schedule, (std::vector<FaultStep>{{.seconds = 5, .kind = FaultKind::Kill},
                                                           {.seconds = 12, .kind = FaultKind::Restart}}));
  EXPECT_EQ((*d)[0].cpu, 0.5);  // a setting after the fault steps is a setting again
  EXPECT_EQ((*d)[1].fail_schedule,
            (std::vector<FaultStep>{{.seconds = 0.2, .kind = FaultKind::Stop, .duration = 3},
                                    {.seconds = 4, .kind = FaultKind::Drop, .duration = 1},
                                    {.seconds = 8, .kind = FaultKind::Stop, .duration = 0}}));
  EXPECT_EQ((*d)[2].fail_schedule, (std::vector<FaultStep>{{.seconds = 1, .kind = FaultKind::Drop}}));
  auto twice = parse_device_list("a:fail=kill@1s,restart@2s,kill@3s,restart@4s", {Fail});
  ASSERT_TRUE(twice.ok()) << twice.error();
  EXPECT_EQ((*twice)[0].fail_schedule.size(), 4u);
}

TEST(DeviceList, BadFailSchedulesSayWhatIsWrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"b:fail=kill@5s,restart@3s", "device b: fail schedule 'kill@5s,restart@3s': times must increase, but restart@3s follows kill@5s"},
      {"b:fail=stop@5s+3s/drop@5s", "times must increase, but drop@5s follows stop@5s+3s"},
      {"b:fail=restart@3s", "'restart@3s' restarts a worker that is not killed: a restart follows a kill"},
      {"b:fail=kill@1s,restart@2s,restart@3s", "'restart@3s' restarts a worker that is not killed"},
      {"b:fail=kill@1s,kill@2s", "'kill@2s' comes while the worker is killed (by kill@1s): restart it first"},
      {"b:fail=kill@1s,stop@2s", "'stop@2s' comes while the worker is killed (by kill@1s)"},
      {"b:fail=stop@1s+2s,kill@2s", "'kill@2s' comes while the worker is frozen (by stop@1s+2s)"},
      {"b:fail=stop@1s,stop@20s", "'stop@20s' comes while the worker is frozen (by stop@1s)"},
      {"b:fail=drop@1s+2s,drop@2s", "'drop@2s' comes while the link is cut (by drop@1s+2s)"},
      {"b:fail=stop@1s+0s", "'stop@1s+0s': the duration must be above 0"},
      {"b:fail=kill@1s+2s", "'kill@1s+2s': only stop and drop last a while (+DURATION)"},
      {"b:fail=explode@1s", "'explode@1s' is not a fault: kill, stop, restart or drop"},
      {"b:fail=kill", "'kill' is not FAULT@TIME (e.g. fail=kill@5s,restart@12s or fail=stop@5s+3s)"},
      {"b:fail=", "'' is not FAULT@TIME"},
      {"b:fail=kill@1s/", "'' is not FAULT@TIME"},
      {"b:fail=kill@xs", "'xs' is not a number >= 0 (e.g. 0.5ms)"},
      {"b:fail=stop@1s+ys", "'ys' is not a number >= 0 (e.g. 0.5ms)"},
      {"b:fail=kill@100000s", "100000s is more than a day"},
      {"b:fail=stop@1s+100000s", "100000s is more than a day"},
      {"b:cpu=0.5,kill@5s", "unknown setting 'kill@5s'"},
  };
  for (const auto& [text, fragment] : bad) {
    auto r = parse_device_list(text, {Cpu, Fail});
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().find(fragment), std::string::npos) << text << ": " << r.error();
  }
  auto what_if = parse_device_list("a:fail=kill@1s", {Speed, Mem});
  ASSERT_FALSE(what_if.ok());
  EXPECT_NE(what_if.error().find("cannot use fail="), std::string::npos) << what_if.error();
}

}  // namespace
}  // namespace ll
