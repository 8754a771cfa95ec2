#include "model/llama_weights.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>

namespace ll::model {
namespace {

std::string shape_str(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// Looks up `name`; checks its shape equals `shape` (ggml order) and that we can compute with its type.
Status bind(const gguf::GgufFile& f, const std::string& name, std::vector<int64_t> shape, bool required,
            bool must_be_f32, WeightRef& out) {
  const gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr) {
    if (required) return Status::Errorf("{}: missing tensor '{}'", f.name(), name);
    return Status::Ok();
  }
  if (t->dims != shape) {
    return Status::Errorf("{}: tensor '{}' has shape {}, expected {}", f.name(), name, shape_str(t->dims),
                          shape_str(shape));
  }
  if (!dtype_info(t->type).computable || (must_be_f32 && t->type != DType::F32)) {
    return Status::Errorf("{}: tensor '{}' has type {}, which is not supported here{}", f.name(), name,
                          dtype_name(t->type), must_be_f32 ? " (expected F32)" : "");
  }
  if (must_be_f32) {
    // The F32 tensors are the small ones (norm weights, RoPE factors): checking them costs nothing,
    // and a NaN in them would silently turn every later value into NaN.
    for (int64_t i = 0; i < t->n_elements; ++i) {
      float v;
      std::memcpy(&v, t->data + i * sizeof(float), sizeof v);  // general.alignment may be below 4
      if (!std::isfinite(v)) {
        return Status::Errorf("{}: tensor '{}' holds {} at index {}; the file is damaged", f.name(), name, v, i);
      }
    }
  }
  out.tensor = t;
  out.type = t->type;
  out.data = t->data;
  out.cols = shape[0];
  out.rows = shape.size() > 1 ? shape[1] : 1;
  return Status::Ok();
}

// The field each role binds to; a new role needs a field here and in LlamaWeights.
template <typename Weights>  // LlamaWeights, const or not
auto field(Weights& w, const WeightInstance& instance) -> decltype(&w.token_embd) {
  auto* L = instance.layer >= 0 ? &w.layers[static_cast<size_t>(instance.layer)] : nullptr;
  switch (instance.spec->role) {
    case WeightRole::TokenEmbd: return &w.token_embd;
    case WeightRole::TokenEmbdNorm: return &w.token_embd_norm;
    case WeightRole::TokenEmbdNormBias: return &w.token_embd_norm_b;
    case WeightRole::OutputNorm: return &w.output_norm;
    case WeightRole::OutputNormBias: return &w.output_norm_b;
    case WeightRole::Output: return &w.output;
    case WeightRole::RopeFreqs: return &w.rope_freqs;
    case WeightRole::AttnNorm: return &L->attn_norm;
    case WeightRole::AttnNormBias: return &L->attn_norm_b;
    case WeightRole::AttnQ: return &L->wq;
    case WeightRole::AttnQBias: return &L->bq;
    case WeightRole::AttnK: return &L->wk;
    case WeightRole::AttnKBias: return &L->bk;
    case WeightRole::AttnV: return &L->wv;
    case WeightRole::AttnVBias: return &L->bv;
    case WeightRole::AttnQkv: return &L->wqkv;
    case WeightRole::AttnQkvBias: return &L->bqkv;
    case WeightRole::AttnOutput: return &L->wo;
    case WeightRole::AttnOutputBias: return &L->bo;
    case WeightRole::AttnPostNorm: return &L->attn_post_norm;
    case WeightRole::FfnNorm: return &L->ffn_norm;
    case WeightRole::FfnNormBias: return &L->ffn_norm_b;
    case WeightRole::FfnGate: return &L->ffn_gate;
    case WeightRole::FfnUp: return &L->ffn_up;
    case WeightRole::FfnUpBias: return &L->ffn_up_b;
    case WeightRole::FfnGateUp: return &L->ffn_gate_up;
    case WeightRole::FfnDown: return &L->ffn_down;
    case WeightRole::FfnDownBias: return &L->ffn_down_b;
    case WeightRole::FfnPostNorm: return &L->ffn_post_norm;
  }
  return nullptr;
}

Result<const ArchSpec*> arch_of(const gguf::GgufFile& f, const HParams& hp) {
  const ArchSpec* arch = find_arch(hp.arch);
  if (arch == nullptr) return Status::Errorf("{}: architecture '{}' is not supported", f.name(), hp.arch);
  return arch;
}

}  // namespace

const WeightRef& weight_ref(const LlamaWeights& w, const WeightInstance& instance) {
  return *field(w, instance);
}

std::vector<UnitWeight> unit_weights(const ArchSpec& arch, const LlamaWeights& w, const Unit& unit) {
  std::vector<UnitWeight> out;
  for (const WeightSpec& spec : arch.weights) {
    if (spec.unit != unit.kind) continue;
    const WeightInstance instance{&spec, spec.per_layer() ? unit.layer : -1};
    out.push_back({instance, &weight_ref(w, instance)});
  }
  return out;
}

std::vector<WeightRef*> bound_weights(const ArchSpec& arch, int64_t n_layer, LlamaWeights& w) {
  std::vector<WeightRef*> out;
  for (const WeightInstance& instance : weight_instances(arch, n_layer)) {
    if (instance.layer >= static_cast<int64_t>(w.layers.size())) continue;
    WeightRef* ref = field(w, instance);
    if (ref->present()) out.push_back(ref);
  }
  return out;
}

Result<int64_t> vocab_size(const gguf::GgufFile& f, const HParams& hp) {
  LL_ASSIGN_OR_RETURN(const ArchSpec* arch, arch_of(f, hp));
  const WeightSpec* first = nullptr;
  for (const WeightSpec& spec : arch->weights) {
    if (spec.per_layer() || spec.shape != std::vector<Dim>{Dim::Embd, Dim::Vocab}) continue;
    if (first == nullptr) first = &spec;
    const std::string name(spec.name);
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) continue;
    if (t->dims.size() != 2 || t->dims[0] != hp.n_embd) {
      return Status::Errorf("{}: tensor '{}' has shape {}, expected [{}, n_vocab]", f.name(), name,
                            shape_str(t->dims), hp.n_embd);
    }
    return t->dims[1];
  }
  auto n = f.get_uint(key_name(hp.arch, Key::VocabSize));
  if (!n.ok()) return Status::Errorf("{}: missing tensor '{}'", f.name(), first != nullptr ? first->name : "");
  if (n.value() < 1 || n.value() > static_cast<uint64_t>(kMaxVocab)) {
    return Status::Errorf("{}: {} = {} is out of range (1..{}); the file is damaged", f.name(),
                          key_name(hp.arch, Key::VocabSize), n.value(), kMaxVocab);
  }
  return static_cast<int64_t>(n.value());
}

Result<LlamaWeights> bind_llama_weights(const gguf::GgufFile& f, const HParams& hp, UnitRange units) {
  LL_ASSIGN_OR_RETURN(const ArchSpec* arch, arch_of(f, hp));
  LlamaWeights w;
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  auto in_range = [&](const WeightInstance& instance) {
    for (int64_t i = units.begin; i < units.end; ++i) {
      if (unit_reads(unit_at(hp, i), instance)) return true;
    }
    return false;
  };
  for (const WeightInstance& instance : weight_instances(*arch, hp.n_layer)) {
    if (!in_range(instance)) continue;
    const WeightSpec& spec = *instance.spec;
    WeightRef& out = *field(w, instance);
    LL_RETURN_IF_ERROR(bind(f, instance.name(), weight_shape(spec, hp), spec.required, spec.f32, out));
    if (!out.present() && spec.fallback) {
      const WeightInstance stand_in{&arch->weight(*spec.fallback), instance.layer};
      const WeightSpec& s = *stand_in.spec;
      LL_RETURN_IF_ERROR(bind(f, stand_in.name(), weight_shape(s, hp), true, s.f32, out));
    }
  }
  return w;
}

}  // namespace ll::model
