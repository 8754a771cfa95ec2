#include "model/hparams.h"

#include <algorithm>
#include <array>

#include "model/arch.h"

namespace ll::model {

Result<HParams> read_hparams(const gguf::GgufFile& f) {
  HParams hp;
  LL_ASSIGN_OR_RETURN(hp.arch, f.get_string("general.architecture"));
  if (find_arch(hp.arch) == nullptr) {
    return Status::Errorf("{}: architecture '{}' is not supported (supported: {})", f.name(), hp.arch,
                          supported_archs());
  }
  LL_ASSIGN_OR_RETURN(hp.name, f.get_string_or("general.name", ""));
  auto k = [&](Key key) { return key_name(hp.arch, key); };
  auto uint_key = [&](Key key, int64_t& out) -> Status {
    auto v = f.get_uint(k(key));
    if (!v.ok()) return v.status();
    out = static_cast<int64_t>(v.value());
    return Status::Ok();
  };
  LL_RETURN_IF_ERROR(uint_key(Key::EmbeddingLength, hp.n_embd));
  LL_RETURN_IF_ERROR(uint_key(Key::BlockCount, hp.n_layer));
  LL_RETURN_IF_ERROR(uint_key(Key::FeedForwardLength, hp.n_ff));
  LL_RETURN_IF_ERROR(uint_key(Key::HeadCount, hp.n_head));
  LL_ASSIGN_OR_RETURN(uint64_t n_head_kv, f.get_uint_or(k(Key::HeadCountKv), hp.n_head));
  LL_ASSIGN_OR_RETURN(uint64_t n_ctx, f.get_uint_or(k(Key::ContextLength), 2048));
  LL_ASSIGN_OR_RETURN(double eps, f.get_float_or(k(Key::RmsEpsilon), 1e-5));
  LL_ASSIGN_OR_RETURN(double base, f.get_float_or(k(Key::RopeFreqBase), 10000.0));
  hp.n_head_kv = static_cast<int64_t>(n_head_kv);
  hp.n_ctx_train = static_cast<int64_t>(n_ctx);
  hp.rms_eps = static_cast<float>(eps);
  hp.rope_freq_base = static_cast<float>(base);

  // Sanity bounds keep later size arithmetic far from overflow.
  constexpr int64_t kMaxDim = 1 << 20;
  if (hp.n_embd <= 0 || hp.n_embd > kMaxDim || hp.n_ff <= 0 || hp.n_ff > kMaxDim || hp.n_layer <= 0 ||
      hp.n_layer > 4096 || hp.n_head <= 0 || hp.n_head > 4096) {
    return Status::Errorf("{}: implausible hyper-parameters (embedding {}, ffn {}, layers {}, heads {})", f.name(),
                          hp.n_embd, hp.n_ff, hp.n_layer, hp.n_head);
  }
  if (hp.n_head_kv <= 0 || hp.n_head % hp.n_head_kv != 0) {
    return Status::Errorf("{}: head_count {} is not a multiple of head_count_kv {}", f.name(), hp.n_head,
                          hp.n_head_kv);
  }
  LL_ASSIGN_OR_RETURN(uint64_t head_dim, f.get_uint_or(k(Key::KeyLength), hp.n_embd / hp.n_head));
  hp.head_dim = static_cast<int64_t>(head_dim);
  if (hp.head_dim <= 0 || hp.head_dim > 4096 || hp.head_dim % 2 != 0) {
    return Status::Errorf("{}: head dimension {} is not a positive even number", f.name(), hp.head_dim);
  }
  LL_ASSIGN_OR_RETURN(uint64_t n_rot, f.get_uint_or(k(Key::RopeDimensionCount), hp.head_dim));
  hp.n_rot = static_cast<int64_t>(n_rot);
  if (hp.n_rot <= 0 || hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return Status::Errorf("{}: rope.dimension_count {} must be even and at most the head dimension {}", f.name(),
                          hp.n_rot, hp.head_dim);
  }
  LL_ASSIGN_OR_RETURN(std::string scaling, f.get_string_or(k(Key::RopeScalingType), "none"));
  if (scaling == "linear") {
    LL_ASSIGN_OR_RETURN(double factor, f.get_float_or(k(Key::RopeScalingFactor), 1.0));
    if (!(factor > 0.0)) return Status::Errorf("{}: rope.scaling.factor {} must be positive", f.name(), factor);
    hp.rope_freq_scale = static_cast<float>(1.0 / factor);
  } else if (scaling != "none" && scaling != "llama3") {
    // llama3 scaling is carried by the rope_freqs.weight tensor.
    return Status::Errorf("{}: rope scaling type '{}' is not supported", f.name(), scaling);
  }
  return hp;
}

int64_t default_context(const HParams& hp) { return std::min<int64_t>(hp.n_ctx_train, kMaxDefaultContext); }

void write_hparams(const HParams& hp, gguf::GgufWriter& w) {
  auto key = [&hp](Key k) { return key_name(hp.arch, k); };
  w.set_uint32(key(Key::ContextLength), static_cast<uint32_t>(hp.n_ctx_train));
  w.set_uint32(key(Key::EmbeddingLength), static_cast<uint32_t>(hp.n_embd));
  w.set_uint32(key(Key::FeedForwardLength), static_cast<uint32_t>(hp.n_ff));
  w.set_uint32(key(Key::BlockCount), static_cast<uint32_t>(hp.n_layer));
  w.set_uint32(key(Key::HeadCount), static_cast<uint32_t>(hp.n_head));
  w.set_uint32(key(Key::HeadCountKv), static_cast<uint32_t>(hp.n_head_kv));
  w.set_uint32(key(Key::RopeDimensionCount), static_cast<uint32_t>(hp.n_rot));
  w.set_float32(key(Key::RmsEpsilon), hp.rms_eps);
  w.set_float32(key(Key::RopeFreqBase), hp.rope_freq_base);
}

}  // namespace ll::model
