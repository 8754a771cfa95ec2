#include "model/llama_weights.h"

#include <fmt/format.h>

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
  out.tensor = t;
  out.type = t->type;
  out.data = t->data;
  out.cols = shape[0];
  out.rows = shape.size() > 1 ? shape[1] : 1;
  return Status::Ok();
}

}  // namespace

Result<int64_t> vocab_size(const gguf::GgufFile& f, const HParams& hp) {
  for (const char* name : {"token_embd.weight", "output.weight"}) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (t == nullptr) continue;
    if (t->dims.size() != 2 || t->dims[0] != hp.n_embd) {
      return Status::Errorf("{}: tensor '{}' has shape {}, expected [{}, n_vocab]", f.name(), name,
                            shape_str(t->dims), hp.n_embd);
    }
    return t->dims[1];
  }
  auto n = f.get_uint(hp.arch + ".vocab_size");
  if (!n.ok()) return Status::Errorf("{}: missing tensor 'token_embd.weight'", f.name());
  return static_cast<int64_t>(n.value());
}

Result<LlamaWeights> bind_llama_weights(const gguf::GgufFile& f, const HParams& hp, UnitRange units) {
  LlamaWeights w;
  const int64_t e = hp.n_embd, q = hp.q_dim(), kv = hp.kv_dim(), ff = hp.n_ff;
  const int64_t head_unit = unit_count(hp) - 1;
  if (units.contains(0)) LL_RETURN_IF_ERROR(bind(f, "token_embd.weight", {e, hp.n_vocab}, true, false, w.token_embd));
  if (units.contains(head_unit)) {
    LL_RETURN_IF_ERROR(bind(f, "output_norm.weight", {e}, true, true, w.output_norm));
    LL_RETURN_IF_ERROR(bind(f, "output.weight", {e, hp.n_vocab}, false, false, w.output));
    if (!w.output.present()) {  // tied embeddings
      LL_RETURN_IF_ERROR(bind(f, "token_embd.weight", {e, hp.n_vocab}, true, false, w.output));
    }
  }
  LL_RETURN_IF_ERROR(bind(f, "rope_freqs.weight", {hp.n_rot / 2}, false, true, w.rope_freqs));

  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t l = 0; l < hp.n_layer; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    struct Binding {
      const char* name;
      std::vector<int64_t> shape;
      bool f32;
      WeightRef* out;
    };
    const Binding attention[] = {
        {"attn_norm.weight", {e}, true, &L.attn_norm}, {"attn_q.weight", {e, q}, false, &L.wq},
        {"attn_k.weight", {e, kv}, false, &L.wk},      {"attn_v.weight", {e, kv}, false, &L.wv},
        {"attn_output.weight", {q, e}, false, &L.wo},
    };
    const Binding ffn[] = {
        {"ffn_norm.weight", {e}, true, &L.ffn_norm},      {"ffn_gate.weight", {e, ff}, false, &L.ffn_gate},
        {"ffn_up.weight", {e, ff}, false, &L.ffn_up},     {"ffn_down.weight", {ff, e}, false, &L.ffn_down},
    };
    if (units.contains(1 + 2 * l)) {
      for (const Binding& b : attention) LL_RETURN_IF_ERROR(bind(f, p + b.name, b.shape, true, b.f32, *b.out));
    }
    if (units.contains(2 + 2 * l)) {
      for (const Binding& b : ffn) LL_RETURN_IF_ERROR(bind(f, p + b.name, b.shape, true, b.f32, *b.out));
    }
  }
  return w;
}

}  // namespace ll::model
