#pragma once
// A model's weights, bound to tensors of a GGUF file by the architecture's table
// (model/arch.h). Every WeightRef points into the mapped file, or into a copy of its tensors
// (model/resident_weights.h).
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "gguf/gguf_file.h"
#include "kernels/weight_layout.h"
#include "model/arch.h"
#include "model/hparams.h"
#include "model/units.h"

namespace ll::model {

// Points into the tensor data of the model that bound it: that model must outlive it.
struct WeightRef {
  const gguf::TensorInfo* tensor = nullptr;  // null when an optional tensor is absent
  DType type = DType::F32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;  // ne0: contiguous dimension (input features)
  int64_t rows = 0;  // ne1: output features (1 for vectors)
  kernels::WeightLayout layout = kernels::WeightLayout::kFile;  // see ResidentWeights
  bool present() const { return data != nullptr; }
};

// Which of these an architecture has is its table's business (model/arch.h); those it lacks
// stay absent. Biases are [rows] vectors of the matrix they follow.
struct LayerWeights {
  WeightRef attn_norm, attn_norm_b;  // [n_embd]
  WeightRef wq, bq;                  // [n_embd -> q_dim]
  WeightRef wk, bk;                  // [n_embd -> kv_dim]
  WeightRef wv, bv;                  // [n_embd -> kv_dim]
  WeightRef wqkv, bqkv;              // [n_embd -> q_dim + 2 kv_dim]: Q, K and V fused
  WeightRef wo, bo;                  // [q_dim -> n_embd]
  WeightRef attn_post_norm;          // [n_embd]
  WeightRef ffn_norm, ffn_norm_b;    // [n_embd]
  WeightRef ffn_gate;                // [n_embd -> n_ff]
  WeightRef ffn_up, ffn_up_b;        // [n_embd -> n_ff]
  WeightRef ffn_gate_up;             // [n_embd -> 2 n_ff]: gate and up fused
  WeightRef ffn_down, ffn_down_b;    // [n_ff -> n_embd]
  WeightRef ffn_post_norm;           // [n_embd]
};

struct LlamaWeights {
  WeightRef token_embd;                       // [n_embd, n_vocab]: row t is the embedding of token t
  WeightRef token_embd_norm, token_embd_norm_b;  // [n_embd]
  WeightRef output_norm, output_norm_b;       // [n_embd]
  WeightRef output;       // [n_embd -> n_vocab]; the embedding itself when tied
  WeightRef rope_freqs;   // [n_rot / 2] llama3 frequency factors, optional
  std::vector<LayerWeights> layers;
};

// The field a table entry binds to (a layer's field for per-layer weights).
const WeightRef& weight_ref(const LlamaWeights& w, const WeightInstance& instance);

// The weights a unit reads, in table order, with what is bound to each (absent ones included).
struct UnitWeight {
  WeightInstance instance;
  const WeightRef* ref;
};
std::vector<UnitWeight> unit_weights(const ArchSpec& arch, const LlamaWeights& w, const Unit& unit);

// Every present weight of w, for moving the tensors they point to (model/resident_weights.h).
std::vector<WeightRef*> bound_weights(const ArchSpec& arch, int64_t n_layer, LlamaWeights& w);

// Binds and validates the tensors of the units in `units` (presence, shape, computable
// type, F32 norms); the others stay unbound, so a shard holding some units loads too.
// hp.n_vocab must be set.
Result<LlamaWeights> bind_llama_weights(const gguf::GgufFile& file, const HParams& hp, UnitRange units);

// The vocabulary size: from the first tensor of the table shaped by it (the embedding, else
// the output head), else <arch>.vocab_size.
Result<int64_t> vocab_size(const gguf::GgufFile& file, const HParams& hp);

}  // namespace ll::model
