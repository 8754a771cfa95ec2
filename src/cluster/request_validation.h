#pragma once
// The checks a worker makes on requests other than steps before it acts on them: frame sizes,
// counts and keys against what each request may carry. Pure functions, so that the fuzzer
// reaches the worker's own checks (step checks live in step_validation.h).
#include <zmq.hpp>

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/hparams.h"
#include "model/units.h"
#include "wire.pb.h"

namespace ll::cluster {

// Largest context a head may ask a worker for; the KV cache is mapped lazily, but its address space is not free.
inline constexpr uint32_t kMaxWorkerContext = 1u << 20;

// One frame of exactly chunk_bytes.
Status validate_shard_chunk(const wire::ShardData& chunk, const std::vector<zmq::message_t>& frames);
// No frame for an empty probe, else one frame of exactly payload_bytes.
Status validate_ping(const wire::Ping& ping, const std::vector<zmq::message_t>& frames);
// Context, unit range and keys (a next worker's key is required unless the worker is insecure).
// The cache types of a LoadSegment / Reshape / KvData: empty fields are f16, unknown names an error.
Result<model::KvTypes> kv_types_from_wire(const std::string& k, const std::string& v);
Status validate_load_fields(const wire::LoadSegment& load, bool insecure);
// A Reshape to an empty range needs nothing else; any other is checked as a LoadSegment.
Status validate_reshape_fields(const wire::Reshape& reshape, bool insecure);
// A unit range within the model, and a key for the destination unless the worker is insecure.
Status validate_send_kv(const wire::SendKv& send, int64_t n_units, bool insecure);
// What the prepared segment of a session can take in.
struct KvDataLimits {
  const model::HParams& hp;
  model::UnitRange range;  // the prepared segment's
  int64_t n_ctx = 0;
  model::KvTypes kv_types;  // the prepared segment's
};
// One unit of one sequence: an attention unit in the prepared segment's cache types with one
// frame of exactly length K and V rows in those types, the head unit with a valid sampler state and no frame, any other unit of the range
// (a sequence's length only) with neither; `last` with no frame. The length within the context,
// the sampler's recent tokens no more than the positions.
Status validate_kv_data(const wire::KvData& kv, const std::vector<zmq::message_t>& frames, const KvDataLimits& limits);
// Repetitions 1..100.
Status validate_speed_probe(const wire::SpeedProbe& probe);
// Repetitions, prompt chunk and context within their limits, and a key for every peer to probe.
Status validate_profile_request(const wire::ProfileRequest& request, bool insecure);

}  // namespace ll::cluster
