#include "cluster/request_validation.h"

#include <fmt/format.h>

#include "net/keys.h"

namespace ll::cluster {

Status validate_shard_chunk(const wire::ShardData& chunk, const std::vector<zmq::message_t>& frames) {
  if (frames.size() == 1 && frames[0].size() == chunk.chunk_bytes()) return Status::Ok();
  return Status::Errorf("shard chunk declares {} bytes but carries {} frame(s) of {} bytes", chunk.chunk_bytes(),
                        frames.size(), frames.empty() ? 0 : frames[0].size());
}

Status validate_ping(const wire::Ping& ping, const std::vector<zmq::message_t>& frames) {
  const uint64_t bytes = ping.payload_bytes();
  const bool ok = bytes == 0 ? frames.empty() : frames.size() == 1 && frames[0].size() == bytes;
  if (ok) return Status::Ok();
  return Status::Errorf("ping declares {} bytes but carries {} frame(s)", bytes, frames.size());
}

Status validate_load_fields(const wire::LoadSegment& load, bool insecure) {
  if (load.n_ctx() == 0 || load.n_ctx() > kMaxWorkerContext) {
    return Status::Errorf("context of {} positions is outside 1..{}", load.n_ctx(), kMaxWorkerContext);
  }
  if (load.unit_begin() >= load.unit_end()) {
    return Status::Errorf("empty unit range {}..{}", load.unit_begin(), load.unit_end());
  }
  for (const std::string& key : load.allow_keys()) {
    if (!net::is_valid_z85_key(key)) return Status::Errorf("allow key '{}' is not a Z85 public key", key);
  }
  if (!load.next_endpoint().empty() && !insecure && !net::is_valid_z85_key(load.next_public_key())) {
    return Status::Errorf("no valid public key given for the next worker {}", load.next_endpoint());
  }
  return Status::Ok();
}

Status validate_profile_request(const wire::ProfileRequest& request, bool insecure) {
  if (request.repetitions() < 1 || request.repetitions() > 100 || request.prompt_chunk() < 1 ||
      request.prompt_chunk() > 4096 || request.decode_context() > kMaxWorkerContext) {
    return Status::Error(
        "profile request outside its limits (repetitions 1..100, prompt chunk 1..4096, context up to 2^20)");
  }
  for (const wire::Peer& peer : request.peers()) {
    if (!insecure && !net::is_valid_z85_key(peer.public_key())) {
      return Status::Errorf("no valid public key for peer {}", peer.endpoint());
    }
  }
  return Status::Ok();
}

}  // namespace ll::cluster
