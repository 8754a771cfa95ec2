#pragma once
// Matrices that take the same input and lie back to back in memory are multiplied as one: one
// quantization of the input and one dispatch to the threads instead of two or three. GGUF files
// and --no-mmap's copy keep a layer's attn_q, attn_k and attn_v, and its ffn_gate and ffn_up,
// next to each other. A row's dot product does not depend on the rows beside it, so the logits
// are the same bits either way.
#include <initializer_list>

#include "model/llama_weights.h"

namespace ll::exec {

// One matrix of the rows of `parts` in order, or an absent ref when they are not all present,
// of one type, width and layout, and back to back.
model::WeightRef joined_rows(std::initializer_list<const model::WeightRef*> parts);

// A layer's matrices multiplied as one where they can be (absent refs where not).
struct JoinedLayer {
  model::WeightRef qkv;      // Q, K and V, when none has a bias and the file does not fuse them
  model::WeightRef gate_up;  // gate and up, when up has no bias and the file does not fuse them
};
JoinedLayer join_layer(const model::LayerWeights& w);

}  // namespace ll::exec
