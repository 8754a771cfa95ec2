#include "exec/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/quantize.h"

namespace ll::exec {

KvCache::KvCache(int64_t n_ctx, int64_t kv_dim, model::KvTypes types)
    : kv_dim_(kv_dim),
      types_(types),
      k_row_(static_cast<size_t>(row_bytes(types.k, kv_dim))),
      v_row_(static_cast<size_t>(row_bytes(types.v, kv_dim))),
      k_positions_(kernels::tiles_keys(types.k) ? (n_ctx + kernels::kKeyTile - 1) / kernels::kKeyTile * kernels::kKeyTile
                                                : n_ctx),
      layer_bytes_(static_cast<size_t>(k_positions_) * k_row_ + static_cast<size_t>(n_ctx) * v_row_) {}

Result<std::unique_ptr<KvCache>> KvCache::create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim,
                                                 model::KvTypes types) {
  for (DType t : {types.k, types.v}) {
    if (kv_dim % dtype_info(t).block_elems != 0) {
      return Status::Errorf("a KV cache of type {} cannot hold rows of {} values", model::kv_type_name(t), kv_dim);
    }
  }
  std::unique_ptr<KvCache> c(new KvCache(n_ctx, kv_dim, types));
  c->bytes_ = static_cast<size_t>(n_layers) * c->layer_bytes_;
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

kernels::KvRows KvCache::keys(int64_t slot, int64_t head_dim) const {
  const size_t head = static_cast<size_t>(row_bytes(types_.k, head_dim));
  if (!keys_tiled()) return {types_.k, k_base(slot), k_row_, head};
  return {types_.k, k_base(slot), kernels::kKeyTile * k_row_, kernels::kKeyTile * head, true};
}

kernels::KvRows KvCache::values(int64_t slot, int64_t head_dim) const {
  return {types_.v, v_base(slot), v_row_, static_cast<size_t>(row_bytes(types_.v, head_dim))};
}

void KvCache::store_k(int64_t slot, int64_t pos, const float* rows, int64_t n) {
  if (!keys_tiled()) {
    for (int64_t t = 0; t < n; ++t) kernels::quantize_row(types_.k, rows + t * kv_dim_, k_base(slot) + (pos + t) * k_row_, kv_dim_);
    return;
  }
  std::vector<uint8_t> quantized(n * k_row_);
  for (int64_t t = 0; t < n; ++t) kernels::quantize_row(types_.k, rows + t * kv_dim_, &quantized[t * k_row_], kv_dim_);
  import_rows_of_keys(slot, pos, n, quantized.data());
}

void KvCache::store_v(int64_t slot, int64_t pos, const float* rows, int64_t n) {
  for (int64_t t = 0; t < n; ++t) kernels::quantize_row(types_.v, rows + t * kv_dim_, v_base(slot) + (pos + t) * v_row_, kv_dim_);
}

void KvCache::export_rows(int64_t slot, int64_t n, uint8_t* out) const {
  if (n == 0) return;
  const kernels::KvRows k = keys(slot);
  if (!k.tiled) {
    std::memcpy(out, k.data, n * k_row_);
  } else {
    const size_t element = k_row_ / kv_dim_;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t i = 0; i < kv_dim_; ++i) {
        std::memcpy(out + p * k_row_ + i * element, k.data + kernels::tiled_offset(k, p, 0, i), element);
      }
    }
  }
  std::memcpy(out + n * k_row_, v_base(slot), n * v_row_);
}

void KvCache::import_rows(int64_t slot, int64_t n, const uint8_t* in) {
  if (n == 0) return;
  import_rows_of_keys(slot, 0, n, in);
  std::memcpy(v_base(slot), in + n * k_row_, n * v_row_);
}

void KvCache::import_rows_of_keys(int64_t slot, int64_t pos, int64_t n, const uint8_t* in) {
  const kernels::KvRows k = keys(slot);
  if (!k.tiled) {
    std::memcpy(k_base(slot) + pos * k_row_, in, n * k_row_);
    return;
  }
  const size_t element = k_row_ / kv_dim_;
  for (int64_t p = pos; p < pos + n; ++p) {
    for (int64_t i = 0; i < kv_dim_; ++i) {
      std::memcpy(k_base(slot) + kernels::tiled_offset(k, p, 0, i), in + (p - pos) * k_row_ + i * element, element);
    }
  }
}

KvCache::~KvCache() {
  if (data_ != nullptr) munmap(data_, bytes_);
}

}  // namespace ll::exec
