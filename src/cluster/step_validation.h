#pragma once
// The checks a worker makes on an incoming Step before it touches any state: every count,
// position, token id and frame size against what its segment and session allow, and its
// sampler settings against their ranges (text::validate).
#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/status.h"
#include "wire.pb.h"

namespace ll::cluster {

// What the worker's segment and session allow a Step.
struct StepLimits {
  uint64_t session = 0;
  int64_t n_ctx = 0, n_vocab = 0, n_embd = 0;
  bool takes_tokens = false;               // the first segment: token ids in, no hidden-state frame
  std::optional<int64_t> sequence_length;  // of the step's sequence; nullopt when the worker does not know it
  size_t n_sequences = 0, max_sequences = 0;  // of the session
};

// Ok, or an error saying what about `step` and its tensor `frames` is outside `limits`.
Status validate_step(const wire::Step& step, const std::vector<zmq::message_t>& frames, const StepLimits& limits);

}  // namespace ll::cluster
