// Emulated device descriptions (`--devices`): caps, link rates and cores, and their errors.
#include "emulate/device_spec.h"

#include <gtest/gtest.h>
#include <sched.h>

#include "emulate/netns.h"
#include "core/quantity.h"

namespace ll {
namespace {

TEST(DeviceSpecBandwidth, RatesAreBitsPerSecond) {
  auto d = emulate::parse_devices("fast:cpu=1.0,bw=100mbit;slow:cpu=0.3,mem=1G,bw=20mbit;plain");
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0].link_bps, 100'000'000u);
  EXPECT_EQ((*d)[0].cpu, 1.0);
  EXPECT_EQ((*d)[1].link_bps, 20'000'000u);
  EXPECT_EQ((*d)[1].memory, 1024u * 1024 * 1024);
  EXPECT_EQ((*d)[2].link_bps, 0u);
  auto n = emulate::parse_devices("3");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ((*n)[0].link_bps, 0u);

  const std::pair<const char*, uint64_t> good[] = {
      {"512kbit", 512'000}, {"8mbit", 8'000'000}, {"8Mbit", 8'000'000}, {"1.5gbit", 1'500'000'000}, {"1kbit", 1000},
      {"100gbit", 100'000'000'000}};
  for (const auto& [text, bps] : good) {
    auto r = parse_bit_rate(text);
    ASSERT_TRUE(r.ok()) << text << ": " << r.error();
    EXPECT_EQ(r.value(), bps) << text;
  }
}

TEST(DeviceSpecBandwidth, OtherUnitsAndBadValuesAreRejected) {
  // tc reads "mbps" as megabytes per second and a bare number as bytes: not accepted here.
  for (const char* unit : {"100", "100mbps", "100mb", "100M", "100bit", "100 mbit", "1e3mbit", "-5mbit"}) {
    auto r = parse_bit_rate(unit);
    ASSERT_FALSE(r.ok()) << unit;
    EXPECT_NE(r.error().find("kbit, mbit or gbit"), std::string::npos) << r.error();
  }
  for (const char* value : {"mbit", "1..2mbit"}) {
    auto r = parse_bit_rate(value);
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_NE(r.error().find("not a non-negative number"), std::string::npos) << r.error();
  }
  for (const char* value : {"0kbit", "0.5kbit", "101gbit"}) {
    auto r = parse_bit_rate(value);
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_NE(r.error().find("between 1kbit and 100gbit"), std::string::npos) << r.error();
  }

  auto bad = emulate::parse_devices("a:cpu=0.5;slow:bw=20mbps");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("device slow: bw: rate '20mbps'"), std::string::npos) << bad.error();
  auto empty = emulate::parse_devices("slow:bw=");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().find("device slow"), std::string::npos) << empty.error();
  auto unknown = emulate::parse_devices("a:rate=20mbit");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("(cpu, mem, threads, bw, cores, busy, fail, host, preset)"), std::string::npos) << unknown.error();
}

TEST(DeviceSpecBandwidth, RatesAreShownAsTcWouldSayThem) {
  EXPECT_EQ(emulate::format_bit_rate(20'000'000), "20 Mbit/s");
  EXPECT_EQ(emulate::format_bit_rate(1'500'000'000), "1.5 Gbit/s");
  EXPECT_EQ(emulate::format_bit_rate(512'000), "512 kbit/s");
}

TEST(DeviceSpecCores, OneCoreOrARange) {
  auto d = emulate::parse_devices("a:cpu=0.25,cores=0;b:cores=0-0;c");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ((*d)[0].cores, std::vector<int>{0});
  EXPECT_EQ((*d)[1].cores, std::vector<int>{0});
  EXPECT_TRUE((*d)[2].cores.empty());
}

TEST(DeviceSpecCores, BadOrUnavailableCoresAreRejected) {
  for (const char* value : {"", "x", "1-0", "0.5", "-1", "99999"}) {
    auto r = emulate::parse_devices(std::string("a:cores=") + value);
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_NE(r.error().find("device a"), std::string::npos) << r.error();
  }
  // A core that exists in the numbering but that this process may not use.
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int missing = 0;
  while (missing < CPU_SETSIZE && CPU_ISSET(missing, &allowed)) ++missing;
  ASSERT_LT(missing, CPU_SETSIZE);
  auto r = emulate::parse_devices("a:cores=" + std::to_string(missing));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("is not one this machine lets us use"), std::string::npos) << r.error();
}

TEST(DeviceSpecSchedule, SharesAndBusyProcessesOverTime) {
  auto d = emulate::parse_devices("a:cpu=0.5;b:cpu=0.5@0s/0.15@3s/0.5@20s,busy=1@3s/2@5s/0@20s;c:busy=1@1s");
  ASSERT_TRUE(d.ok()) << d.error();
  const emulate::DeviceSpec& a = (*d)[0];
  EXPECT_EQ(a.cpu, 0.5);
  EXPECT_TRUE(a.schedule.empty());
  const emulate::DeviceSpec& b = (*d)[1];
  EXPECT_EQ(b.cpu, 0.5);  // the share it starts with
  EXPECT_EQ(b.schedule.cpu, (std::vector<TimedValue>{{0, 0.5}, {3, 0.15}, {20, 0.5}}));
  EXPECT_EQ(b.schedule.busy, (std::vector<TimedValue>{{3, 1}, {5, 2}, {20, 0}}));
  EXPECT_EQ(b.schedule.max_busy(), 2);
  const emulate::DeviceSpec& c = (*d)[2];
  EXPECT_EQ(c.cpu, 0);
  EXPECT_FALSE(c.schedule.empty());
  EXPECT_EQ(c.schedule.max_busy(), 1);
}

TEST(DeviceSpecSchedule, FaultsAndWhetherTheyNeedANamespace) {
  auto d = emulate::parse_devices("a:fail=kill@5s,restart@12s,cpu=0.5;b:fail=stop@1s+2s/drop@4s;c");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ((*d)[0].faults, (std::vector<FaultStep>{{.seconds = 5, .kind = FaultKind::Kill},
                                                    {.seconds = 12, .kind = FaultKind::Restart}}));
  EXPECT_EQ((*d)[0].cpu, 0.5);
  EXPECT_FALSE((*d)[0].drops_link());
  EXPECT_EQ((*d)[1].faults.size(), 2u);
  EXPECT_TRUE((*d)[1].drops_link());
  EXPECT_TRUE((*d)[2].faults.empty());
  EXPECT_TRUE((*d)[0].schedule.empty());  // faults are no speed schedule: no cgroup for them
}

}  // namespace
}  // namespace ll
