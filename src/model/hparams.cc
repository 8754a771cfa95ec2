#include "model/hparams.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

#include "model/arch.h"

namespace ll::model {

Result<HParams> read_hparams(const gguf::GgufFile& f) {
  HParams hp;
  LL_ASSIGN_OR_RETURN(hp.arch, f.get_string("general.architecture"));
  const ArchSpec* arch = find_arch(hp.arch);
  if (arch == nullptr) {
    return Status::Errorf("{}: architecture '{}' is not supported (supported: {})", f.name(), hp.arch,
                          supported_archs());
  }
  LL_ASSIGN_OR_RETURN(hp.name, f.get_string_or("general.name", ""));
  auto k = [&](Key key) { return key_name(hp.arch, key); };
  // Every value is bounded, so that later size arithmetic stays far from overflow and a damaged
  // file is refused here, naming the key, rather than failing somewhere in the forward pass.
  auto out_of_range = [&](Key key, auto value, std::string_view range) {
    return Status::Errorf("{}: {} = {} is out of range ({}); the file is damaged or not a model this program reads",
                          f.name(), k(key), value, range);
  };
  auto int_key = [&](Key key, std::optional<uint64_t> fallback, int64_t lo, int64_t hi, int64_t& out) -> Status {
    auto v = fallback ? f.get_uint_or(k(key), *fallback) : f.get_uint(k(key));
    if (!v.ok()) return v.status();
    if (v.value() < static_cast<uint64_t>(lo) || v.value() > static_cast<uint64_t>(hi)) {
      return out_of_range(key, v.value(), fmt::format("{}..{}", lo, hi));
    }
    out = static_cast<int64_t>(v.value());
    return Status::Ok();
  };
  // A float key that must be finite and above 0 as the float the model computes with.
  auto positive_key = [&](Key key, double fallback, float& out) -> Status {
    auto v = f.get_float_or(k(key), fallback);
    if (!v.ok()) return v.status();
    const auto as_float = static_cast<float>(v.value());
    if (!(std::isfinite(as_float) && as_float > 0.0f)) return out_of_range(key, v.value(), "a finite number above 0");
    out = as_float;
    return Status::Ok();
  };
  LL_RETURN_IF_ERROR(int_key(Key::EmbeddingLength, std::nullopt, 1, kMaxDim, hp.n_embd));
  LL_RETURN_IF_ERROR(int_key(Key::BlockCount, std::nullopt, 1, kMaxLayers, hp.n_layer));
  LL_RETURN_IF_ERROR(int_key(Key::FeedForwardLength, std::nullopt, 1, kMaxDim, hp.n_ff));
  LL_RETURN_IF_ERROR(int_key(Key::HeadCount, std::nullopt, 1, kMaxHeads, hp.n_head));
  LL_RETURN_IF_ERROR(int_key(Key::HeadCountKv, static_cast<uint64_t>(hp.n_head), 1, hp.n_head, hp.n_head_kv));
  LL_RETURN_IF_ERROR(int_key(Key::ContextLength, 2048, 1, kMaxContextLength, hp.n_ctx_train));
  LL_RETURN_IF_ERROR(positive_key(arch->norm == NormKind::Rms ? Key::RmsEpsilon : Key::LayerNormEpsilon, 1e-5, hp.norm_eps));
  if (arch->sliding_window != SlidingWindowLayers::None) {
    LL_RETURN_IF_ERROR(int_key(Key::SlidingWindow, static_cast<uint64_t>(arch->default_window), 0, kMaxContextLength, hp.n_swa));
  }
  // Soft-capping is read where the file has it; 0 (none) is not a valid value in a file.
  auto softcap_key = [&](Key key, float fallback, float& out) -> Status {
    if (f.find(k(key)) == nullptr && fallback == 0.0f) return Status::Ok();
    return positive_key(key, fallback, out);
  };
  LL_RETURN_IF_ERROR(softcap_key(Key::AttnLogitSoftcapping, arch->default_attn_softcap, hp.attn_softcap));
  LL_RETURN_IF_ERROR(softcap_key(Key::FinalLogitSoftcapping, arch->default_final_softcap, hp.final_softcap));
  LL_RETURN_IF_ERROR(positive_key(Key::RopeFreqBase, 10000.0, hp.rope_freq_base));
  if (hp.n_head % hp.n_head_kv != 0) {
    return Status::Errorf("{}: head_count {} is not a multiple of head_count_kv {}", f.name(), hp.n_head,
                          hp.n_head_kv);
  }
  LL_RETURN_IF_ERROR(int_key(Key::KeyLength, static_cast<uint64_t>(hp.n_embd / hp.n_head), 1, kMaxHeadDim, hp.head_dim));
  int64_t value_length = 0;
  LL_RETURN_IF_ERROR(int_key(Key::ValueLength, static_cast<uint64_t>(hp.head_dim), 1, kMaxHeadDim, value_length));
  if (value_length != hp.head_dim) {
    return Status::Errorf("{}: {} = {} differs from the key length {}; heads whose V is not as wide as K are not "
                          "supported", f.name(), k(Key::ValueLength), value_length, hp.head_dim);
  }
  if (hp.head_dim % 2 != 0) {
    return Status::Errorf("{}: head dimension {} is not a positive even number", f.name(), hp.head_dim);
  }
  LL_RETURN_IF_ERROR(int_key(Key::RopeDimensionCount, static_cast<uint64_t>(hp.head_dim), 1, hp.head_dim, hp.n_rot));
  if (hp.n_rot % 2 != 0) {
    return Status::Errorf("{}: rope.dimension_count {} must be even and at most the head dimension {}", f.name(),
                          hp.n_rot, hp.head_dim);
  }
  LL_ASSIGN_OR_RETURN(std::string scaling, f.get_string_or(k(Key::RopeScalingType), "none"));
  if (scaling == "linear") {
    float factor = 1.0f;
    LL_RETURN_IF_ERROR(positive_key(Key::RopeScalingFactor, 1.0, factor));
    hp.rope_freq_scale = 1.0f / factor;
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
  if (hp.head_dim != hp.n_embd / hp.n_head) {
    // llama.cpp reads the value length apart; this engine's heads have V as wide as K.
    w.set_uint32(key(Key::KeyLength), static_cast<uint32_t>(hp.head_dim));
    w.set_uint32(key(Key::ValueLength), static_cast<uint32_t>(hp.head_dim));
  }
  w.set_uint32(key(Key::RopeDimensionCount), static_cast<uint32_t>(hp.n_rot));
  const ArchSpec* arch = find_arch(hp.arch);
  w.set_float32(key(arch != nullptr && arch->norm == NormKind::Layer ? Key::LayerNormEpsilon : Key::RmsEpsilon), hp.norm_eps);
  if (hp.n_swa > 0) w.set_uint32(key(Key::SlidingWindow), static_cast<uint32_t>(hp.n_swa));
  if (hp.attn_softcap > 0) w.set_float32(key(Key::AttnLogitSoftcapping), hp.attn_softcap);
  if (hp.final_softcap > 0) w.set_float32(key(Key::FinalLogitSoftcapping), hp.final_softcap);
  w.set_float32(key(Key::RopeFreqBase), hp.rope_freq_base);
}

}  // namespace ll::model
