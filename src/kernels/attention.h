#pragma once
// Causal attention of query heads grouped by the key/value head they share (grouped-query
// attention), read straight from the KV cache in its type: one pass over the positions in
// blocks, with a running maximum and sum per head (online softmax). Each block's rows of every
// key/value head are read together, so the cache is streamed once, in order.
//
// Long ranges are cut into chunks (attention_chunk) whose softmax states are merged: the chunks
// of one query can run on different threads, and the result depends only on the range, never on
// how the chunks were shared out.
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace ll::kernels {

// Positions per tile of a tiled key cache.
constexpr int64_t kKeyTile = 16;

// The rows of the key or value heads, in `type` (F32, F16 or Q8_0; a Q8_0 head is whole blocks).
// In rows, position p's values of head g (head_dim of them) start at data + p * stride +
// g * head_stride bytes. Tiled (keys in F32 or F16 only), the positions lie in tiles of
// kKeyTile, `stride` bytes apart, and a tile holds each head's values column by column (value i
// of the tile's positions side by side, see tiled_offset): the scores of a tile's positions are
// then sums of whole vectors, with no sums across lanes.
struct KvRows {
  DType type;
  const uint8_t* data;
  size_t stride;
  size_t head_stride = 0;
  bool tiled = false;
};

// Bytes from r.data to value i of head g at position p of tiled rows.
inline size_t tiled_offset(const KvRows& r, int64_t p, int64_t g, int64_t i) {
  return static_cast<size_t>(p / kKeyTile) * r.stride + static_cast<size_t>(g) * r.head_stride +
         static_cast<size_t>((i * kKeyTile + p % kKeyTile) * dtype_info(r.type).block_bytes);
}

// Whether keys of this type are kept tiled.
inline bool tiles_keys(DType type) { return type == DType::F32 || type == DType::F16; }

struct AttentionQuery {
  const float* q = nullptr;        // [n_kv][n_q][head_dim]: each key/value head's query heads
  int64_t n_q = 1;                 // query heads per key/value head
  int64_t n_kv = 1;                // key/value heads
  int64_t head_dim = 0;
  float scale = 1.0f;              // of q . k
  float softcap = 0.0f;            // > 0: s = cap * tanh(s / cap)
  const float* alibi = nullptr;    // [n_kv * n_q] slopes, or null: s -= slope * (query - p)
  int64_t query = 0;               // the query's position
};

// The softmax state of every query head over some positions: its largest score, the sum of
// exp(score - max) and the sum of exp(score - max) * v, not yet divided by that sum.
struct AttentionPart {
  float* max;  // [heads]
  float* sum;  // [heads]
  float* out;  // [heads][head_dim]
};

// out[n_kv * n_q][head_dim] = sum_p softmax(s)_p v_p over positions [first, first + len), len >= 1.
void attend(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out);

// attend cut in pieces: the positions per chunk for a range of len positions (chunk c starts
// at first + c * chunk), the state of one chunk, and the merge of every chunk's state in order.
// attend gives the same bits.
int64_t attention_chunk(int64_t len);
void attend_part(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, const AttentionPart& part);
void merge_attention_parts(const AttentionPart* parts, int64_t n_parts, int64_t heads, int64_t head_dim, float* out);

// The scalar twin: every row dequantized, the whole softmax at once.
void attend_reference(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out);

}  // namespace ll::kernels
