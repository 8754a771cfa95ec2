#pragma once
// Causal attention of the query heads that share one key/value head (grouped-query attention),
// read straight from the KV cache in its type: one pass over the positions in blocks, with a
// running maximum and sum per head (online softmax), so the cache is streamed once per group.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace ll::kernels {

// The rows of one key or value head: position p's head_dim values start at data + p * stride
// bytes, in `type` (F32, F16 or Q8_0; a Q8_0 head is whole blocks).
struct KvRows {
  DType type;
  const uint8_t* data;
  size_t stride;
};

struct AttentionQuery {
  const float* q = nullptr;        // [n_q][head_dim], the heads sharing the keys and values
  int64_t n_q = 1;
  int64_t head_dim = 0;
  float scale = 1.0f;              // of q . k
  float softcap = 0.0f;            // > 0: s = cap * tanh(s / cap)
  const float* alibi = nullptr;    // [n_q] slopes, or null: s -= slope * (query - p)
  int64_t query = 0;               // the query's position
};

// out[n_q][head_dim] = sum_p softmax(s)_p v_p over positions [first, first + len), len >= 1.
void attend(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out);
// The scalar twin: every row dequantized, the whole softmax at once.
void attend_reference(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out);

}  // namespace ll::kernels
