#pragma once
// The checks a worker makes on requests other than steps before it acts on them: frame sizes,
// counts and keys against what each request may carry. Pure functions, so that the fuzzer
// reaches the worker's own checks (step checks live in step_validation.h).
#include <zmq.hpp>

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "wire.pb.h"

namespace ll::cluster {

// Largest context a head may ask a worker for; the KV cache is mapped lazily, but its address space is not free.
inline constexpr uint32_t kMaxWorkerContext = 1u << 20;

// One frame of exactly chunk_bytes.
Status validate_shard_chunk(const wire::ShardData& chunk, const std::vector<zmq::message_t>& frames);
// No frame for an empty probe, else one frame of exactly payload_bytes.
Status validate_ping(const wire::Ping& ping, const std::vector<zmq::message_t>& frames);
// Context, unit range and keys (a next worker's key is required unless the worker is insecure).
Status validate_load_fields(const wire::LoadSegment& load, bool insecure);
// Repetitions, prompt chunk and context within their limits, and a key for every peer to probe.
Status validate_profile_request(const wire::ProfileRequest& request, bool insecure);

}  // namespace ll::cluster
