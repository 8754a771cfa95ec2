#pragma once
// Key/value cache of one sequence for the attention units of one segment.
// F32, laid out per layer as K[n_ctx][kv_dim] then V[n_ctx][kv_dim]. The memory comes from
// an anonymous mapping, so only the positions actually written become resident.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/status.h"

namespace ll::exec {

// Owns its memory; the pointers from k() and v() are valid while it lives. Not synchronized:
// it belongs to one sequence of one SegmentExecutor, which alone uses it.
class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // slot: index of the attention layer within this segment.
  float* k(int64_t slot, int64_t pos) { return base(slot) + pos * kv_dim_; }
  float* v(int64_t slot, int64_t pos) { return base(slot) + (n_ctx_ + pos) * kv_dim_; }
  int64_t n_ctx() const { return n_ctx_; }
  size_t bytes() const { return bytes_; }

 private:
  KvCache(int64_t n_ctx, int64_t kv_dim) : n_ctx_(n_ctx), kv_dim_(kv_dim) {}
  float* base(int64_t slot) { return data_ + slot * 2 * n_ctx_ * kv_dim_; }
  int64_t n_ctx_, kv_dim_;
  size_t bytes_ = 0;
  float* data_ = nullptr;
};

}  // namespace ll::exec
