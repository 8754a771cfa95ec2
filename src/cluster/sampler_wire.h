#pragma once
// The sampler settings of a request as they travel to the last worker (in a sequence's first
// Step), and a sampler's state as it moves between workers: the one conversion between text's
// sampler types and the wire's.
#include "text/sampler.h"
#include "wire.pb.h"

namespace ll::cluster {

void sampler_to_wire(const text::SamplerParams& params, wire::SamplerParams* out);
text::SamplerParams sampler_from_wire(const wire::SamplerParams& params);
// A sequence's sampler as it moves with the head unit (KvData.sampler).
void sampler_state_to_wire(const text::SamplerState& state, wire::SamplerState* out);
text::SamplerState sampler_state_from_wire(const wire::SamplerState& state);

}  // namespace ll::cluster
