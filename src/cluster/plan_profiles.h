#pragma once
// The profiles `lingualinked plan` plans on: the workers' own, measured over the network, or
// else those of plan::local_profiles (a saved file or this machine, optionally scaled into
// what-if devices).
#include <cstdint>
#include <string>

#include "cluster/head_setup.h"
#include "cluster/pipeline.h"
#include "core/status.h"
#include "model/model.h"
#include "plan/profile_source.h"
#include "profile/device_profile.h"

namespace ll::cluster {

struct PlanProfileSource {
  HeadSetup workers;          // workers given: profile them (no saved profiles or what-if devices then)
  std::string save_profiles;  // with workers: write their measured profiles here
  plan::ProfileSource local;  // without workers
};

// n_ctx: the positions per sequence the plan is for (the workers time decoding at half of it);
// the workers time it with the KV cache types of source.local.
Result<profile::ClusterProfile> plan_profiles(const std::string& model_path, const model::Model& model,
                                              const PlanProfileSource& source, int64_t n_ctx,
                                              const ProgressNote& progress = {});

}  // namespace ll::cluster
