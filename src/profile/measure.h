#pragma once
// Measures this device's profile: every unit of a model timed with the real kernels and the
// model's own weights, as a pipeline stage runs it.
#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/kv_types.h"
#include "model/model.h"
#include "profile/device_profile.h"

namespace ll::profile {

struct MeasureOptions {
  std::string name;                 // default: the host name
  int64_t decode_context = 128;     // positions filled before timing one decode step
  int64_t prompt_chunk = 32;        // tokens per timed prompt chunk
  uint64_t memory_limit_bytes = 0;  // a user's cap (--mem); 0: none
  model::KvTypes kv_types;          // the KV cache's element types the runs will use
};

// Times every unit of `m` (which must have all its units bound) on this device with the
// real kernels and the model's own weights: a warm-up, then the median of `repetitions`.
Result<DeviceProfile> measure_device_profile(const model::Model& m, int threads, int repetitions,
                                             const MeasureOptions& options = {});

}  // namespace ll::profile
