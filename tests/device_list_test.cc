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

}  // namespace
}  // namespace ll
