#include "exec/kv_cache.h"

#include <sys/mman.h>

#include "kernels/quantize.h"

namespace ll::exec {

KvCache::KvCache(int64_t n_ctx, int64_t kv_dim, model::KvTypes types)
    : n_ctx_(n_ctx),
      kv_dim_(kv_dim),
      types_(types),
      k_row_(static_cast<size_t>(row_bytes(types.k, kv_dim))),
      v_row_(static_cast<size_t>(row_bytes(types.v, kv_dim))) {}

Result<std::unique_ptr<KvCache>> KvCache::create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim,
                                                 model::KvTypes types) {
  for (DType t : {types.k, types.v}) {
    if (kv_dim % dtype_info(t).block_elems != 0) {
      return Status::Errorf("a KV cache of type {} cannot hold rows of {} values", model::kv_type_name(t), kv_dim);
    }
  }
  std::unique_ptr<KvCache> c(new KvCache(n_ctx, kv_dim, types));
  c->bytes_ = static_cast<size_t>(n_layers * n_ctx) * (c->k_row_ + c->v_row_);
  if (c->bytes_ == 0) return c;
  void* p = mmap(nullptr, c->bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status::Errorf("cannot reserve {} MiB for the KV cache ({} layers x {} positions)", c->bytes_ >> 20,
                          n_layers, n_ctx);
  }
  c->data_ = static_cast<uint8_t*>(p);
  // Huge pages where the kernel has them: attention streams a layer's rows of every position
  // once per token, and with 4 KiB pages it waited on their translations. Advice only.
  madvise(p, c->bytes_, MADV_HUGEPAGE);
  return c;
}

void KvCache::store_k(int64_t slot, int64_t pos, const float* rows, int64_t n) {
  for (int64_t t = 0; t < n; ++t) kernels::quantize_row(types_.k, rows + t * kv_dim_, k(slot, pos + t), kv_dim_);
}

void KvCache::store_v(int64_t slot, int64_t pos, const float* rows, int64_t n) {
  for (int64_t t = 0; t < n; ++t) kernels::quantize_row(types_.v, rows + t * kv_dim_, v(slot, pos + t), kv_dim_);
}

KvCache::~KvCache() {
  if (data_ != nullptr) munmap(data_, bytes_);
}

}  // namespace ll::exec
