#pragma once
// Where a plan's device and link profiles come from when no workers are asked: a saved file,
// or this machine measured now; what-if devices (what_if.h) scale one device's profile.
#include <functional>
#include <string>

#include "core/status.h"
#include "model/kv_types.h"
#include "model/model.h"
#include "profile/device_profile.h"

namespace ll::plan {

struct ProfileSource {
  std::string profiles_path;  // saved profiles: {"devices": [...], "links": [...]} or one device's
  std::string what_if;        // what_if_devices() text; empty: the profiles as they are
  int threads = 0;            // measuring this machine; 0: default_thread_count()
  int repetitions = 3;        // timed repetitions per unit when measuring
  model::KvTypes kv_types = {};  // the KV cache's types when measuring
};

// The saved profiles, else this machine measured now (saying so through `progress`); with
// `what_if`, the devices it describes scaled from the one profile (the file must hold one).
Result<profile::ClusterProfile> local_profiles(const model::Model& model, const ProfileSource& source,
                                               const std::function<void(const std::string&)>& progress = {});

}  // namespace ll::plan
