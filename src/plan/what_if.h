#pragma once
// Devices and links described on the command line instead of measured, to ask what a plan
// would be on other hardware.
#include <string>
#include <vector>

#include "core/status.h"
#include "profile/device_profile.h"

namespace ll::plan {

// Devices in the grammar of `--devices` (core/device_list.h) with the settings speed and mem:
// "a:speed=1.0,mem=4G;b:speed=0.5,mem=1G" makes devices from one measured profile, its times
// divided by `speed` (default 1), its memory `mem` (default the measured one).
Result<std::vector<profile::DeviceProfile>> what_if_devices(const std::string& text, const profile::DeviceProfile& measured);

// "rtt=0.5ms,bw=125M": a link (round trip time, bytes per second); bw is required.
Result<profile::LinkProfile> parse_link(const std::string& text);

}  // namespace ll::plan
