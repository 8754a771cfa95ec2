#pragma once
// The Llama-family weights, bound by a table (name, shape, required) to tensors of a GGUF
// file. Nothing is copied: every WeightRef points into the mapped file.
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "gguf/gguf_file.h"
#include "model/hparams.h"
#include "model/units.h"

namespace ll::model {

// Points into the tensor data (the mapped file) of the model that bound it: that model must
// outlive it.
struct WeightRef {
  const gguf::TensorInfo* tensor = nullptr;  // null when an optional tensor is absent
  DType type = DType::F32;
  const uint8_t* data = nullptr;
  int64_t cols = 0;  // ne0: contiguous dimension (input features)
  int64_t rows = 0;  // ne1: output features (1 for vectors)
  bool present() const { return data != nullptr; }
};

struct LayerWeights {
  WeightRef attn_norm;  // [n_embd]
  WeightRef wq;         // [n_embd -> q_dim]
  WeightRef wk;         // [n_embd -> kv_dim]
  WeightRef wv;         // [n_embd -> kv_dim]
  WeightRef wo;         // [q_dim -> n_embd]
  WeightRef ffn_norm;   // [n_embd]
  WeightRef ffn_gate;   // [n_embd -> n_ff]
  WeightRef ffn_up;     // [n_embd -> n_ff]
  WeightRef ffn_down;   // [n_ff -> n_embd]
};

struct LlamaWeights {
  WeightRef token_embd;   // [n_embd, n_vocab]: row t is the embedding of token t
  WeightRef output_norm;  // [n_embd]
  WeightRef output;       // [n_embd -> n_vocab]; the embedding itself when tied
  WeightRef rope_freqs;   // [n_rot / 2] llama3 frequency factors, optional
  std::vector<LayerWeights> layers;
};

// Binds and validates the tensors of the units in `units` (presence, shape, computable
// type, F32 norms); the others stay unbound, so a shard holding some units loads too.
// hp.n_vocab must be set.
Result<LlamaWeights> bind_llama_weights(const gguf::GgufFile& file, const HParams& hp, UnitRange units);

// The vocabulary size: rows of the embedding or the output head, else <arch>.vocab_size.
Result<int64_t> vocab_size(const gguf::GgufFile& file, const HParams& hp);

}  // namespace ll::model
