#include "plan/profile_source.h"

#include <fmt/format.h>

#include "core/thread_pool.h"
#include "plan/what_if.h"
#include "profile/measure.h"

namespace ll::plan {

Result<profile::ClusterProfile> local_profiles(const model::Model& model, const ProfileSource& source,
                                               const std::function<void(const std::string&)>& progress) {
  profile::ClusterProfile cluster;
  if (!source.profiles_path.empty()) {
    LL_ASSIGN_OR_RETURN(auto j, profile::read_json_file(source.profiles_path));
    auto c = profile::cluster_profile_from_json(j);
    if (!c.ok()) return Status::Errorf("{}: {}", source.profiles_path, c.error());
    cluster = std::move(c).value();
  }
  if (!source.what_if.empty() && cluster.devices.size() > 1) {
    return Status::Errorf("--devices scales one device's profile, but {} holds {}", source.profiles_path,
                          cluster.devices.size());
  }
  if (!cluster.devices.empty() && source.what_if.empty()) return cluster;
  profile::DeviceProfile base;
  if (cluster.devices.empty()) {
    const int threads = thread_count_or_default(source.threads);
    if (progress) progress(fmt::format("profiling this device with {} thread(s)...", threads));
    profile::MeasureOptions measure;
    measure.kv_types = source.kv_types;
    LL_ASSIGN_OR_RETURN(base, profile::measure_device_profile(model, threads, source.repetitions, measure));
  } else {
    base = cluster.devices[0];
  }
  if (source.what_if.empty()) return profile::ClusterProfile{{base}, {}};
  LL_ASSIGN_OR_RETURN(auto devices, what_if_devices(source.what_if, base));
  return profile::ClusterProfile{std::move(devices), {}};
}

}  // namespace ll::plan
