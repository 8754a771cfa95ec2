#pragma once
// Key/value cache of one sequence for the attention units of one segment. K and V each keep
// their own element type (model::KvTypes); a row is one position's kv_dim values in that type,
// laid out per layer as K[n_ctx] rows then V[n_ctx] rows. The memory comes from an anonymous
// mapping, so only the positions actually written become resident.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/status.h"
#include "model/kv_types.h"

namespace ll::exec {

// Owns its memory; the pointers from k() and v() are valid while it lives. Not synchronized:
// it belongs to one sequence of one SegmentExecutor, which alone uses it.
class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim,
                                                 model::KvTypes types);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // slot: index of the attention layer within this segment.
  uint8_t* k(int64_t slot, int64_t pos) { return base(slot) + pos * k_row_; }
  uint8_t* v(int64_t slot, int64_t pos) { return base(slot) + n_ctx_ * k_row_ + pos * v_row_; }
  const uint8_t* k(int64_t slot, int64_t pos) const { return const_cast<KvCache*>(this)->k(slot, pos); }
  const uint8_t* v(int64_t slot, int64_t pos) const { return const_cast<KvCache*>(this)->v(slot, pos); }
  // Rounds (F16) or quantizes (Q8_0) n rows of kv_dim floats into K or V at pos, once.
  void store_k(int64_t slot, int64_t pos, const float* rows, int64_t n);
  void store_v(int64_t slot, int64_t pos, const float* rows, int64_t n);
  model::KvTypes types() const { return types_; }
  size_t k_row_bytes() const { return k_row_; }
  size_t v_row_bytes() const { return v_row_; }
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const { return bytes_; }

 private:
  KvCache(int64_t n_ctx, int64_t kv_dim, model::KvTypes types);
  uint8_t* base(int64_t slot) { return data_ + slot * n_ctx_ * (k_row_ + v_row_); }
  int64_t n_ctx_, kv_dim_;
  model::KvTypes types_;
  size_t k_row_, v_row_;
  size_t bytes_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace ll::exec
