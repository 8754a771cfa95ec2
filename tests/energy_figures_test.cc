// Energy figures and device presets: their parsers and limits, presets in `--devices` and
// their overrides, energy settings, and the figures in a device profile's JSON.
#include <gtest/gtest.h>

#include "core/device_list.h"
#include "core/device_presets.h"
#include "core/energy_figures.h"
#include "core/quantity.h"
#include "emulate/device_spec.h"
#include "profile/device_profile.h"

namespace ll {
namespace {

using enum DeviceSetting;

TEST(EnergyFigures, ParsesUnits) {
  EXPECT_DOUBLE_EQ(parse_watts("4W").value(), 4);
  EXPECT_DOUBLE_EQ(parse_watts("500mW").value(), 0.5);
  EXPECT_DOUBLE_EQ(parse_watts("2.5").value(), 2.5);
  EXPECT_DOUBLE_EQ(parse_joules("40nJ").value(), 40e-9);
  EXPECT_DOUBLE_EQ(parse_joules("0.1uJ").value(), 0.1e-6);
  EXPECT_DOUBLE_EQ(parse_joules("4e-8").value(), 4e-8);
  EXPECT_DOUBLE_EQ(parse_percent("15%").value(), 15);
  for (const char* bad : {"", "W", "-1W", "4 W", "4kW", "nan", "inf", "1e999"}) {
    EXPECT_FALSE(parse_watts(bad).ok()) << bad;
  }
  EXPECT_FALSE(parse_joules("40nj").ok());
  EXPECT_FALSE(parse_percent("15%%").ok());
}

TEST(EnergyFigures, AbsurdFiguresAreRefused) {
  EXPECT_TRUE(check_energy_figures({4, 0.4, 40e-9}, "p").ok());
  for (EnergyFigures bad : {EnergyFigures{0, 0, 0}, EnergyFigures{4, 0, 0}, EnergyFigures{5000, 1, 0},
                            EnergyFigures{1, 2, 0}, EnergyFigures{4, 0.4, 1.0}, EnergyFigures{4, 0.4, -1e-9}}) {
    EXPECT_FALSE(check_energy_figures(bad, "p").ok()) << bad.compute_watts << " " << bad.idle_watts;
  }
  EXPECT_NE(check_energy_figures({1, 2, 0}, "p").message().find("computing draws at least as much"), std::string::npos);
  EXPECT_TRUE(check_battery_percent(0, "p").ok());
  EXPECT_TRUE(check_battery_percent(100, "p").ok());
  EXPECT_FALSE(check_battery_percent(100.5, "p").ok());
  EXPECT_FALSE(check_battery_percent(-1, "p").ok());
}

TEST(DevicePresets, EveryPresetIsAPlausibleDevice) {
  ASSERT_GE(device_presets().size(), 4u);
  for (const DevicePreset& p : device_presets()) {
    EXPECT_TRUE(check_energy_figures(p.energy, p.name).ok()) << p.name;
    EXPECT_GT(p.cpu, 0) << p.name;
    EXPECT_GE(p.memory, 512u << 20) << p.name;
    EXPECT_GE(p.link_bps, 1'000'000u) << p.name;
    EXPECT_EQ(find_device_preset(p.name), &p);
  }
  EXPECT_EQ(find_device_preset("phone"), nullptr);
  EXPECT_EQ(device_preset_names(), "phone-low, phone-mid, pi4, laptop");
}

TEST(DevicePresets, NamedDevicesTakeTheirPresetAndOverridesWin) {
  auto d = emulate::parse_devices("phone-mid;phone-low;laptop;b:preset=pi4,mem=2G,cpu=0.2");
  ASSERT_TRUE(d.ok()) << d.error();
  ASSERT_EQ(d->size(), 4u);
  const DevicePreset* mid = find_device_preset("phone-mid");
  EXPECT_EQ((*d)[0].name, "phone-mid");
  EXPECT_DOUBLE_EQ((*d)[0].cpu, mid->cpu);
  EXPECT_EQ((*d)[0].memory, mid->memory);
  EXPECT_EQ((*d)[0].link_bps, mid->link_bps);
  EXPECT_DOUBLE_EQ((*d)[1].cpu, find_device_preset("phone-low")->cpu);
  EXPECT_EQ((*d)[2].link_bps, find_device_preset("laptop")->link_bps);
  EXPECT_EQ((*d)[3].name, "b");
  EXPECT_DOUBLE_EQ((*d)[3].cpu, 0.2);  // given after the preset's, wherever preset= stands
  EXPECT_EQ((*d)[3].memory, 2ull << 30);
  EXPECT_EQ((*d)[3].link_bps, find_device_preset("pi4")->link_bps);

  auto described = parse_device_list("phone-low:battery=15%,power=3W;x:preset=laptop,radio=10nJ", {Preset, Power, Radio, Battery});
  ASSERT_TRUE(described.ok()) << described.error();
  EXPECT_EQ((*described)[0].preset, "phone-low");
  EXPECT_DOUBLE_EQ((*described)[0].energy->compute_watts, 3);
  EXPECT_DOUBLE_EQ((*described)[0].energy->idle_watts, find_device_preset("phone-low")->energy.idle_watts);
  EXPECT_DOUBLE_EQ(*(*described)[0].battery_percent, 15);
  EXPECT_DOUBLE_EQ((*described)[1].energy->radio_joules_per_byte, 10e-9);
  EXPECT_DOUBLE_EQ((*described)[1].energy->compute_watts, find_device_preset("laptop")->energy.compute_watts);
}

TEST(DevicePresets, BadPresetsAndEnergySettingsSayWhy) {
  const std::initializer_list<DeviceSetting> all = {Cpu, Mem, Bw, Preset, Power, Idle, Radio, Battery};
  const std::pair<const char*, const char*> cases[] = {
      {"a:preset=phone-high", "unknown preset 'phone-high' (phone-low, phone-mid, pi4, laptop)"},
      {"phone-low;phone-low", "used twice"},
      {"a:power=4W", "give power=, idle= and radio= together"},
      {"a:power=4W,idle=0.5W", "give power=, idle= and radio= together"},
      {"a:power=0W,idle=0W,radio=1nJ", "compute power 0 W is not above 0"},
      {"a:power=1W,idle=2W,radio=1nJ", "computing draws at least as much"},
      {"phone-mid:idle=9W", "computing draws at least as much"},
      {"phone-mid:power=3000W", "at most 2000 W"},
      {"phone-mid:radio=1J", "J per byte is not between 0"},
      {"phone-mid:radio=40nj", "unknown unit 'nj'"},
      {"phone-mid:battery=120%", "battery 120% is not between 0 and 100"},
      {"phone-mid:battery=-5", "not a number >= 0"},
      {"phone-mid:power=", "not a number >= 0"},
  };
  for (const auto& [text, expected] : cases) {
    auto r = parse_device_list(text, all);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().find(expected), std::string::npos) << text << ": " << r.error();
  }
  // A command without energy settings refuses them, even beside a preset it takes.
  auto demo = emulate::parse_devices("phone-mid:power=4W");
  ASSERT_FALSE(demo.ok());
  EXPECT_NE(demo.error().find("cannot use power="), std::string::npos) << demo.error();
  // A command without presets leaves a device named like one alone.
  auto plain = parse_device_list("laptop", {Cpu});
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_FALSE((*plain)[0].cpu.has_value());
  EXPECT_FALSE(parse_device_list("a:preset=laptop", {Cpu}).ok());
}

TEST(DeviceProfileEnergy, JsonRoundTripAndBadFigures) {
  profile::DeviceProfile p;
  p.name = "phone";
  p.decode_seconds = {1e-3};
  p.prompt_seconds_per_token = {1e-4};
  auto plain = profile::device_profile_from_json(profile::to_json(p));
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_FALSE(plain->energy.has_value());
  EXPECT_FALSE(plain->battery_percent.has_value());

  p.energy = EnergyFigures{4, 0.4, 40e-9};
  p.battery_percent = 12.5;
  auto back = profile::device_profile_from_json(profile::to_json(p));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_DOUBLE_EQ(back->energy->compute_watts, 4);
  EXPECT_DOUBLE_EQ(back->energy->idle_watts, 0.4);
  EXPECT_DOUBLE_EQ(back->energy->radio_joules_per_byte, 40e-9);
  EXPECT_DOUBLE_EQ(*back->battery_percent, 12.5);

  const std::pair<std::function<void(nlohmann::json&)>, const char*> cases[] = {
      {[](nlohmann::json& j) { j["energy"] = 4; }, "'energy' must be an object"},
      {[](nlohmann::json& j) { j["energy"].erase("idle_watts"); }, "missing field 'idle_watts'"},
      {[](nlohmann::json& j) { j["energy"]["compute_watts"] = "4W"; }, "'compute_watts' has the wrong type"},
      {[](nlohmann::json& j) { j["energy"]["compute_watts"] = -4; }, "compute power -4 W"},
      {[](nlohmann::json& j) { j["energy"]["radio_joules_per_byte"] = 0.5; }, "J per byte"},
      {[](nlohmann::json& j) { j["battery_percent"] = 101; }, "battery 101%"},
      {[](nlohmann::json& j) { j["battery_percent"] = "low"; }, "'battery_percent' has the wrong type"},
  };
  for (const auto& [spoil, expected] : cases) {
    nlohmann::json j = profile::to_json(p);
    spoil(j);
    auto r = profile::device_profile_from_json(j);
    ASSERT_FALSE(r.ok()) << expected;
    EXPECT_NE(r.error().find(expected), std::string::npos) << r.error();
  }
}

}  // namespace
}  // namespace ll
