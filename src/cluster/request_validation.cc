#include "cluster/request_validation.h"

#include <fmt/format.h>

#include "cluster/activation_wire.h"
#include "cluster/sampler_wire.h"
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

Result<model::KvTypes> kv_types_from_wire(const std::string& k, const std::string& v) {
  model::KvTypes types;
  if (!k.empty()) {
    LL_ASSIGN_OR_RETURN(types.k, model::parse_kv_type(k));
  }
  if (!v.empty()) {
    LL_ASSIGN_OR_RETURN(types.v, model::parse_kv_type(v));
  }
  return types;
}

Status validate_load_fields(const wire::LoadSegment& load, bool insecure) {
  if (auto types = kv_types_from_wire(load.cache_type_k(), load.cache_type_v()); !types.ok()) return types.status();
  if (load.n_ctx() == 0 || load.n_ctx() > kMaxWorkerContext) {
    return Status::Errorf("context of {} positions is outside 1..{}", load.n_ctx(), kMaxWorkerContext);
  }
  if (load.unit_begin() >= load.unit_end()) {
    return Status::Errorf("empty unit range {}..{}", load.unit_begin(), load.unit_end());
  }
  for (const std::string& key : load.allow_keys()) {
    if (!net::is_valid_z85_key(key)) return Status::Errorf("allow key '{}' is not a Z85 public key", key);
  }
  if (activation_bytes(load.send_type()) == 0) {
    return Status::Errorf("unknown type {} for the hidden states sent to the next worker (f32, f16 or bf16)",
                          static_cast<int>(load.send_type()));
  }
  if (!load.next_endpoint().empty() && !insecure && !net::is_valid_z85_key(load.next_public_key())) {
    return Status::Errorf("no valid public key given for the next worker {}", load.next_endpoint());
  }
  return Status::Ok();
}

Status validate_reshape_fields(const wire::Reshape& reshape, bool insecure) {
  for (const std::string& key : reshape.allow_keys()) {
    if (!net::is_valid_z85_key(key)) return Status::Errorf("allow key '{}' is not a Z85 public key", key);
  }
  if (reshape.unit_begin() == reshape.unit_end()) return Status::Ok();
  if (reshape.source_case() == wire::Reshape::SOURCE_NOT_SET) {
    return Status::Error("Reshape names neither a model path nor a shard");
  }
  wire::LoadSegment load;
  load.set_unit_begin(reshape.unit_begin());
  load.set_unit_end(reshape.unit_end());
  load.set_n_ctx(reshape.n_ctx());
  load.set_next_endpoint(reshape.next_endpoint());
  load.set_next_public_key(reshape.next_public_key());
  load.set_send_type(reshape.send_type());
  load.set_cache_type_k(reshape.cache_type_k());
  load.set_cache_type_v(reshape.cache_type_v());
  return validate_load_fields(load, insecure);
}

Status validate_send_kv(const wire::SendKv& send, int64_t n_units, bool insecure) {
  if (send.unit_begin() >= send.unit_end() || send.unit_end() > n_units) {
    return Status::Errorf("SendKv names units {}..{}, not a range within the model's {} units", send.unit_begin(),
                          static_cast<int64_t>(send.unit_end()) - 1, n_units);
  }
  if (send.to_endpoint().empty()) return Status::Error("SendKv names no destination endpoint");
  if (!insecure && !net::is_valid_z85_key(send.to_public_key())) {
    return Status::Errorf("no valid public key given for the destination {}", send.to_endpoint());
  }
  return Status::Ok();
}

Status validate_kv_data(const wire::KvData& kv, const std::vector<zmq::message_t>& frames, const KvDataLimits& limits) {
  const uint64_t frame_bytes = frames.size() == 1 ? frames[0].size() : 0;
  if (kv.last()) {
    if (!frames.empty() || kv.bytes() != 0) return Status::Error("the last KvData of a transfer carries no frame");
    return Status::Ok();
  }
  if (!limits.range.contains(kv.unit())) {
    return Status::Errorf("KvData for unit {}, which the prepared segment ({}) does not hold", kv.unit(),
                          limits.range.begin == limits.range.end ? std::string("no units")
                                                                 : model::describe_units(limits.hp, limits.range));
  }
  if (kv.length() > limits.n_ctx) {
    return Status::Errorf("KvData for {} positions does not fit the prepared context of {}", kv.length(), limits.n_ctx);
  }
  const model::UnitKind kind = model::unit_at(limits.hp, kv.unit()).kind;
  if (kind == model::UnitKind::Attention) {
    LL_ASSIGN_OR_RETURN(const model::KvTypes types, kv_types_from_wire(kv.cache_type_k(), kv.cache_type_v()));
    if (!(types == limits.kv_types)) {
      return Status::Errorf("KvData of unit {} is in a {}/{} KV cache but the prepared segment's is {}/{}", kv.unit(),
                            model::kv_type_name(types.k), model::kv_type_name(types.v),
                            model::kv_type_name(limits.kv_types.k), model::kv_type_name(limits.kv_types.v));
    }
    const uint64_t expected = kv.length() * model::kv_row_bytes(limits.hp, limits.kv_types);
    if (frames.size() != 1 || kv.bytes() != expected || frame_bytes != expected) {
      return Status::Errorf("KvData of unit {} for {} positions must carry one frame of {} bytes (declared {}, got {} "
                            "frame(s))", kv.unit(), kv.length(), expected, kv.bytes(), frames.size());
    }
    return Status::Ok();
  }
  if (!frames.empty() || kv.bytes() != 0) return Status::Errorf("KvData of unit {} carries no frame", kv.unit());
  if (kind != model::UnitKind::Head) return Status::Ok();
  if (!kv.has_sampler()) return Status::Errorf("KvData of the head unit {} carries no sampler state", kv.unit());
  LL_RETURN_IF_ERROR(text::validate(sampler_from_wire(kv.sampler().params())));
  if (static_cast<uint64_t>(kv.sampler().recent_size()) > kv.length()) {
    return Status::Errorf("sampler state remembers {} tokens of a sequence of {} positions", kv.sampler().recent_size(),
                          kv.length());
  }
  return Status::Ok();
}

Status validate_speed_probe(const wire::SpeedProbe& probe) {
  if (probe.repetitions() < 1 || probe.repetitions() > 100) {
    return Status::Errorf("speed probe of {} repetitions is outside 1..100", probe.repetitions());
  }
  return Status::Ok();
}

Status validate_profile_request(const wire::ProfileRequest& request, bool insecure) {
  if (request.repetitions() < 1 || request.repetitions() > 100 || request.prompt_chunk() < 1 ||
      request.prompt_chunk() > 4096 || request.decode_context() > kMaxWorkerContext) {
    return Status::Error(
        "profile request outside its limits (repetitions 1..100, prompt chunk 1..4096, context up to 2^20)");
  }
  if (auto types = kv_types_from_wire(request.cache_type_k(), request.cache_type_v()); !types.ok()) return types.status();
  for (const wire::Peer& peer : request.peers()) {
    if (!insecure && !net::is_valid_z85_key(peer.public_key())) {
      return Status::Errorf("no valid public key for peer {}", peer.endpoint());
    }
  }
  return Status::Ok();
}

}  // namespace ll::cluster
