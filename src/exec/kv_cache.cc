#include "exec/kv_cache.h"

#include <sys/mman.h>


namespace ll::exec {

Result<std::unique_ptr<KvCache>> KvCache::create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim) {
  std::unique_ptr<KvCache> c(new KvCache(n_ctx, kv_dim));
  c->bytes_ = static_cast<size_t>(n_layers * 2 * n_ctx * kv_dim) * sizeof(float);
  if (c->bytes_ == 0) return c;
  void* p = mmap(nullptr, c->bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status::Errorf("cannot reserve {} MiB for the KV cache ({} layers x {} positions)", c->bytes_ >> 20,
                          n_layers, n_ctx);
  }
  c->data_ = static_cast<float*>(p);
  return c;
}

KvCache::~KvCache() {
  if (data_ != nullptr) munmap(data_, bytes_);
}

}  // namespace ll::exec
