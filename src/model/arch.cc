#include "model/arch.h"

#include <fmt/format.h>

#include "core/check.h"

namespace ll::model {
namespace {

using R = WeightRole;
using U = UnitKind;

// Table entries in the order of WeightSpec: role, name, shape, owning unit, required, F32,
// matvec, fallback. Names as llama.cpp spells them.
WeightSpec matrix(R role, std::string_view name, Dim in, Dim out, U unit) {
  return {role, name, {in, out}, unit, true, false, true, {}};
}
WeightSpec vector(R role, std::string_view name, Dim dim, U unit) {  // norms and biases
  return {role, name, {dim}, unit, true, true, false, {}};
}
WeightSpec embedding() { return {R::TokenEmbd, "token_embd.weight", {Dim::Embd, Dim::Vocab}, U::Embed, true, false, false, {}}; }
// Absent: tied to the embedding.
WeightSpec output_head() { return {R::Output, "output.weight", {Dim::Embd, Dim::Vocab}, U::Head, false, false, true, R::TokenEmbd}; }

// Llama: RMSNorm, RoPE, grouped-query attention, SwiGLU FFN.
std::vector<WeightSpec> llama_weights() {
  return {
      embedding(),
      vector(R::AttnNorm, "blk.{}.attn_norm.weight", Dim::Embd, U::Attention),
      matrix(R::AttnQ, "blk.{}.attn_q.weight", Dim::Embd, Dim::QDim, U::Attention),
      matrix(R::AttnK, "blk.{}.attn_k.weight", Dim::Embd, Dim::KvDim, U::Attention),
      matrix(R::AttnV, "blk.{}.attn_v.weight", Dim::Embd, Dim::KvDim, U::Attention),
      matrix(R::AttnOutput, "blk.{}.attn_output.weight", Dim::QDim, Dim::Embd, U::Attention),
      vector(R::FfnNorm, "blk.{}.ffn_norm.weight", Dim::Embd, U::Ffn),
      matrix(R::FfnGate, "blk.{}.ffn_gate.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnUp, "blk.{}.ffn_up.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnDown, "blk.{}.ffn_down.weight", Dim::Ff, Dim::Embd, U::Ffn),
      vector(R::OutputNorm, "output_norm.weight", Dim::Embd, U::Head),
      output_head(),
      // Llama 3 frequency factors, one per rotated pair.
      {R::RopeFreqs, "rope_freqs.weight", {Dim::RopePairs}, U::Attention, false, true, false, {}},
  };
}

// Qwen2: Llama with biases on Q, K and V.
std::vector<WeightSpec> qwen2_weights() {
  return {
      embedding(),
      vector(R::AttnNorm, "blk.{}.attn_norm.weight", Dim::Embd, U::Attention),
      matrix(R::AttnQ, "blk.{}.attn_q.weight", Dim::Embd, Dim::QDim, U::Attention),
      vector(R::AttnQBias, "blk.{}.attn_q.bias", Dim::QDim, U::Attention),
      matrix(R::AttnK, "blk.{}.attn_k.weight", Dim::Embd, Dim::KvDim, U::Attention),
      vector(R::AttnKBias, "blk.{}.attn_k.bias", Dim::KvDim, U::Attention),
      matrix(R::AttnV, "blk.{}.attn_v.weight", Dim::Embd, Dim::KvDim, U::Attention),
      vector(R::AttnVBias, "blk.{}.attn_v.bias", Dim::KvDim, U::Attention),
      matrix(R::AttnOutput, "blk.{}.attn_output.weight", Dim::QDim, Dim::Embd, U::Attention),
      vector(R::FfnNorm, "blk.{}.ffn_norm.weight", Dim::Embd, U::Ffn),
      matrix(R::FfnGate, "blk.{}.ffn_gate.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnUp, "blk.{}.ffn_up.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnDown, "blk.{}.ffn_down.weight", Dim::Ff, Dim::Embd, U::Ffn),
      vector(R::OutputNorm, "output_norm.weight", Dim::Embd, U::Head),
      output_head(),
  };
}

// Phi-3: Llama with Q, K, V fused into one projection and gate and up into another.
std::vector<WeightSpec> phi3_weights() {
  return {
      embedding(),
      vector(R::AttnNorm, "blk.{}.attn_norm.weight", Dim::Embd, U::Attention),
      matrix(R::AttnQkv, "blk.{}.attn_qkv.weight", Dim::Embd, Dim::QkvDim, U::Attention),
      matrix(R::AttnOutput, "blk.{}.attn_output.weight", Dim::QDim, Dim::Embd, U::Attention),
      vector(R::FfnNorm, "blk.{}.ffn_norm.weight", Dim::Embd, U::Ffn),
      matrix(R::FfnGateUp, "blk.{}.ffn_up.weight", Dim::Embd, Dim::FfTwice, U::Ffn),
      matrix(R::FfnDown, "blk.{}.ffn_down.weight", Dim::Ff, Dim::Embd, U::Ffn),
      vector(R::OutputNorm, "output_norm.weight", Dim::Embd, U::Head),
      output_head(),
  };
}

// Gemma 2: Llama with GeGLU and a norm after each sub-layer as well as before it.
std::vector<WeightSpec> gemma2_weights() {
  return {
      embedding(),
      vector(R::AttnNorm, "blk.{}.attn_norm.weight", Dim::Embd, U::Attention),
      matrix(R::AttnQ, "blk.{}.attn_q.weight", Dim::Embd, Dim::QDim, U::Attention),
      matrix(R::AttnK, "blk.{}.attn_k.weight", Dim::Embd, Dim::KvDim, U::Attention),
      matrix(R::AttnV, "blk.{}.attn_v.weight", Dim::Embd, Dim::KvDim, U::Attention),
      matrix(R::AttnOutput, "blk.{}.attn_output.weight", Dim::QDim, Dim::Embd, U::Attention),
      vector(R::AttnPostNorm, "blk.{}.post_attention_norm.weight", Dim::Embd, U::Attention),
      vector(R::FfnNorm, "blk.{}.ffn_norm.weight", Dim::Embd, U::Ffn),
      matrix(R::FfnGate, "blk.{}.ffn_gate.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnUp, "blk.{}.ffn_up.weight", Dim::Embd, Dim::Ff, U::Ffn),
      matrix(R::FfnDown, "blk.{}.ffn_down.weight", Dim::Ff, Dim::Embd, U::Ffn),
      vector(R::FfnPostNorm, "blk.{}.post_ffw_norm.weight", Dim::Embd, U::Ffn),
      vector(R::OutputNorm, "output_norm.weight", Dim::Embd, U::Head),
      output_head(),
  };
}

// BLOOM: LayerNorm with biases everywhere (the embeddings too), fused QKV, a plain GELU FFN.
std::vector<WeightSpec> bloom_weights() {
  return {
      embedding(),
      vector(R::TokenEmbdNorm, "token_embd_norm.weight", Dim::Embd, U::Embed),
      vector(R::TokenEmbdNormBias, "token_embd_norm.bias", Dim::Embd, U::Embed),
      vector(R::AttnNorm, "blk.{}.attn_norm.weight", Dim::Embd, U::Attention),
      vector(R::AttnNormBias, "blk.{}.attn_norm.bias", Dim::Embd, U::Attention),
      matrix(R::AttnQkv, "blk.{}.attn_qkv.weight", Dim::Embd, Dim::QkvDim, U::Attention),
      vector(R::AttnQkvBias, "blk.{}.attn_qkv.bias", Dim::QkvDim, U::Attention),
      matrix(R::AttnOutput, "blk.{}.attn_output.weight", Dim::QDim, Dim::Embd, U::Attention),
      vector(R::AttnOutputBias, "blk.{}.attn_output.bias", Dim::Embd, U::Attention),
      vector(R::FfnNorm, "blk.{}.ffn_norm.weight", Dim::Embd, U::Ffn),
      vector(R::FfnNormBias, "blk.{}.ffn_norm.bias", Dim::Embd, U::Ffn),
      matrix(R::FfnUp, "blk.{}.ffn_up.weight", Dim::Embd, Dim::Ff, U::Ffn),
      vector(R::FfnUpBias, "blk.{}.ffn_up.bias", Dim::Ff, U::Ffn),
      matrix(R::FfnDown, "blk.{}.ffn_down.weight", Dim::Ff, Dim::Embd, U::Ffn),
      vector(R::FfnDownBias, "blk.{}.ffn_down.bias", Dim::Embd, U::Ffn),
      vector(R::OutputNorm, "output_norm.weight", Dim::Embd, U::Head),
      vector(R::OutputNormBias, "output_norm.bias", Dim::Embd, U::Head),
      output_head(),
  };
}

const std::vector<ArchSpec>& archs() {
  static const std::vector<ArchSpec> kArchs = [] {
    std::vector<ArchSpec> a;
    a.push_back({.name = "llama", .weights = llama_weights()});
    a.push_back({.name = "mistral", .weights = llama_weights()});  // the Llama block under another name
    a.push_back({.name = "qwen2", .weights = qwen2_weights(), .rope = RopeKind::Neox});
    a.push_back({.name = "phi3", .weights = phi3_weights(), .rope = RopeKind::Neox,
                 .sliding_window = SlidingWindowLayers::All});
    a.push_back({.name = "gemma2", .weights = gemma2_weights(), .rope = RopeKind::Neox, .ffn = FfnKind::GeluGated,
                 .embed_scale = true, .sliding_window = SlidingWindowLayers::Even, .default_window = 4096,
                 .default_attn_softcap = 50.0f, .default_final_softcap = 30.0f});
    a.push_back({.name = "bloom", .weights = bloom_weights(), .norm = NormKind::Layer, .rope = RopeKind::None,
                 .ffn = FfnKind::Gelu, .alibi = true});
    return a;
  }();
  return kArchs;
}

}  // namespace

int64_t dim_value(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::Embd: return hp.n_embd;
    case Dim::Vocab: return hp.n_vocab;
    case Dim::QDim: return hp.q_dim();
    case Dim::KvDim: return hp.kv_dim();
    case Dim::QkvDim: return hp.q_dim() + 2 * hp.kv_dim();
    case Dim::Ff: return hp.n_ff;
    case Dim::FfTwice: return 2 * hp.n_ff;
    case Dim::RopePairs: return hp.n_rot / 2;
  }
  return 0;
}

const WeightSpec& ArchSpec::weight(WeightRole role) const {
  for (const WeightSpec& w : weights) {
    if (w.role == role) return w;
  }
  LL_CHECK(false && "the role is not in the architecture's table");
  return weights.front();
}

bool ArchSpec::has(WeightRole role) const {
  for (const WeightSpec& w : weights) {
    if (w.role == role) return true;
  }
  return false;
}

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec& a : archs()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string supported_archs() {
  std::string names;
  for (const ArchSpec& a : archs()) names += fmt::format("{}{}", names.empty() ? "" : ", ", a.name);
  return names;
}

std::string key_name(std::string_view arch, Key key) {
  const char* suffix = "";
  switch (key) {
    case Key::ContextLength: suffix = "context_length"; break;
    case Key::EmbeddingLength: suffix = "embedding_length"; break;
    case Key::FeedForwardLength: suffix = "feed_forward_length"; break;
    case Key::BlockCount: suffix = "block_count"; break;
    case Key::HeadCount: suffix = "attention.head_count"; break;
    case Key::HeadCountKv: suffix = "attention.head_count_kv"; break;
    case Key::KeyLength: suffix = "attention.key_length"; break;
    case Key::ValueLength: suffix = "attention.value_length"; break;
    case Key::RmsEpsilon: suffix = "attention.layer_norm_rms_epsilon"; break;
    case Key::LayerNormEpsilon: suffix = "attention.layer_norm_epsilon"; break;
    case Key::RopeDimensionCount: suffix = "rope.dimension_count"; break;
    case Key::RopeFreqBase: suffix = "rope.freq_base"; break;
    case Key::RopeScalingType: suffix = "rope.scaling.type"; break;
    case Key::RopeScalingFactor: suffix = "rope.scaling.factor"; break;
    case Key::VocabSize: suffix = "vocab_size"; break;
    case Key::SlidingWindow: suffix = "attention.sliding_window"; break;
    case Key::AttnLogitSoftcapping: suffix = "attn_logit_softcapping"; break;
    case Key::FinalLogitSoftcapping: suffix = "final_logit_softcapping"; break;
  }
  return fmt::format("{}.{}", arch, suffix);
}

std::string WeightInstance::name() const {
  return spec->per_layer() ? fmt::format(fmt::runtime(spec->name), layer) : std::string(spec->name);
}

std::vector<WeightInstance> weight_instances(const ArchSpec& arch, int64_t n_layer) {
  std::vector<WeightInstance> out;
  size_t i = 0;
  const auto& w = arch.weights;
  for (; i < w.size() && !w[i].per_layer(); ++i) out.push_back({&w[i], -1});
  const size_t block_begin = i;
  while (i < w.size() && w[i].per_layer()) ++i;
  for (int64_t l = 0; l < n_layer; ++l) {
    for (size_t j = block_begin; j < i; ++j) out.push_back({&w[j], l});
  }
  for (; i < w.size(); ++i) {
    LL_CHECK(!w[i].per_layer() && "per-layer entries form one block");
    out.push_back({&w[i], -1});
  }
  return out;
}

std::vector<int64_t> weight_shape(const WeightSpec& spec, const HParams& hp) {
  std::vector<int64_t> dims;
  for (Dim d : spec.shape) dims.push_back(dim_value(d, hp));
  return dims;
}

bool unit_reads(const Unit& unit, const WeightInstance& w) {
  return unit.kind == w.spec->unit && (w.layer < 0 || w.layer == unit.layer);
}

}  // namespace ll::model
