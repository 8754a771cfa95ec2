#pragma once
// Devices and links described on the command line instead of measured, to ask what a plan
// would be on other hardware.
#include <string>
#include <vector>

#include "core/status.h"
#include "profile/device_profile.h"

namespace ll::plan {

// Devices in the grammar of `--devices` (core/device_list.h) with the settings speed, cpu, mem,
// preset and the energy ones: "a:speed=1.0,mem=4G;b:speed=0.5,mem=1G" makes devices from one
// measured profile, its times divided by `speed` (default: cpu / the measured threads, so that
// a preset's share of a core means one core's speed times that share; else 1), its memory `mem`
// (default the measured one); "phone-mid;phone-low:battery=15%" takes presets' figures.
Result<std::vector<profile::DeviceProfile>> what_if_devices(const std::string& text, const profile::DeviceProfile& measured);

// "rtt=0.5ms,bw=125M": a link (round trip time, bytes per second); bw is required.
Result<profile::LinkProfile> parse_link(const std::string& text);

}  // namespace ll::plan
