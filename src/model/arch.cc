#include "model/arch.h"

#include <fmt/format.h>

#include "core/check.h"

namespace ll::model {
namespace {

using R = WeightRole;
using U = UnitKind;

// Llama: RMSNorm, RoPE, grouped-query attention, SwiGLU FFN. Names as llama.cpp spells them.
std::vector<WeightSpec> llama_weights() {
  // role, name, shape, owning unit, required, F32, matvec, fallback
  return {
      {R::TokenEmbd, "token_embd.weight", {Dim::Embd, Dim::Vocab}, U::Embed, true, false, false, {}},
      {R::AttnNorm, "blk.{}.attn_norm.weight", {Dim::Embd}, U::Attention, true, true, false, {}},
      {R::AttnQ, "blk.{}.attn_q.weight", {Dim::Embd, Dim::QDim}, U::Attention, true, false, true, {}},
      {R::AttnK, "blk.{}.attn_k.weight", {Dim::Embd, Dim::KvDim}, U::Attention, true, false, true, {}},
      {R::AttnV, "blk.{}.attn_v.weight", {Dim::Embd, Dim::KvDim}, U::Attention, true, false, true, {}},
      {R::AttnOutput, "blk.{}.attn_output.weight", {Dim::QDim, Dim::Embd}, U::Attention, true, false, true, {}},
      {R::FfnNorm, "blk.{}.ffn_norm.weight", {Dim::Embd}, U::Ffn, true, true, false, {}},
      {R::FfnGate, "blk.{}.ffn_gate.weight", {Dim::Embd, Dim::Ff}, U::Ffn, true, false, true, {}},
      {R::FfnUp, "blk.{}.ffn_up.weight", {Dim::Embd, Dim::Ff}, U::Ffn, true, false, true, {}},
      {R::FfnDown, "blk.{}.ffn_down.weight", {Dim::Ff, Dim::Embd}, U::Ffn, true, false, true, {}},
      {R::OutputNorm, "output_norm.weight", {Dim::Embd}, U::Head, true, true, false, {}},
      {R::Output, "output.weight", {Dim::Embd, Dim::Vocab}, U::Head, false, false, true, R::TokenEmbd},
      // Llama 3 frequency factors, one per rotated pair.
      {R::RopeFreqs, "rope_freqs.weight", {Dim::RopePairs}, U::Attention, false, true, false, {}},
  };
}

const std::vector<ArchSpec>& archs() {
  static const std::vector<ArchSpec> kArchs = {
      {"llama", llama_weights()},
      {"mistral", llama_weights()},  // the Llama block under another name
  };
  return kArchs;
}

}  // namespace

int64_t dim_value(Dim d, const HParams& hp) {
  switch (d) {
    case Dim::Embd: return hp.n_embd;
    case Dim::Vocab: return hp.n_vocab;
    case Dim::QDim: return hp.q_dim();
    case Dim::KvDim: return hp.kv_dim();
    case Dim::Ff: return hp.n_ff;
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
    case Key::RmsEpsilon: suffix = "attention.layer_norm_rms_epsilon"; break;
    case Key::RopeDimensionCount: suffix = "rope.dimension_count"; break;
    case Key::RopeFreqBase: suffix = "rope.freq_base"; break;
    case Key::RopeScalingType: suffix = "rope.scaling.type"; break;
    case Key::RopeScalingFactor: suffix = "rope.scaling.factor"; break;
    case Key::VocabSize: suffix = "vocab_size"; break;
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
