#include "cluster/plan_profiles.h"

namespace ll::cluster {

Result<profile::ClusterProfile> plan_profiles(const std::string& model_path, const model::Model& model,
                                              const PlanProfileSource& source, int64_t n_ctx,
                                              const ProgressNote& progress) {
  if (source.workers.workers.empty()) return plan::local_profiles(model, source.local, progress);
  if (!source.local.profiles_path.empty() || !source.local.what_if.empty()) {
    return Status::Error("--workers measures the devices: drop --profiles and --devices");
  }
  LL_ASSIGN_OR_RETURN(const HeadOptions head, head_options(source.workers));
  PlanningOptions planning;
  planning.save_profiles = source.save_profiles;
  auto profiles = profile_workers(model_path, head, planning, n_ctx, source.local.kv_types, progress);
  if (!profiles.ok()) return Status::Error("profiling the workers: " + profiles.error());
  return profiles;
}

}  // namespace ll::cluster
