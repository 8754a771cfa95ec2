#pragma once
// The sampler settings of a request as they travel to the last worker (in a sequence's first
// Step): the one conversion between text::SamplerParams and wire::SamplerParams.
#include "text/sampler.h"
#include "wire.pb.h"

namespace ll::cluster {

void sampler_to_wire(const text::SamplerParams& params, wire::SamplerParams* out);
text::SamplerParams sampler_from_wire(const wire::SamplerParams& params);

}  // namespace ll::cluster
