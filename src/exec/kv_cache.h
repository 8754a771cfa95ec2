#pragma once
// Key/value cache of one sequence for the attention units of one segment. K and V each keep
// their own element type (model::KvTypes); a row is one position's kv_dim values in that type.
// Per layer, the keys come first, then V[n_ctx] rows. Keys in F32 or F16 are kept in tiles of
// kernels::kKeyTile positions (kernels::KvRows says how), so that attention scores a tile
// without sums across lanes; Q8_0 keys are rows. The memory comes from an anonymous mapping, so
// only the positions actually written become resident (in steps of 2 MiB where the kernel gives
// it huge pages).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/status.h"
#include "kernels/attention.h"
#include "model/kv_types.h"

namespace ll::exec {

// Owns its memory; the rows from keys() and values() are valid while it lives. Not synchronized:
// it belongs to one sequence of one SegmentExecutor, which alone uses it.
class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> create(int64_t n_layers, int64_t n_ctx, int64_t kv_dim,
                                                 model::KvTypes types);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // slot: index of the attention layer within this segment. The keys and values of all heads,
  // heads head_dim values long, for the attention kernels.
  kernels::KvRows keys(int64_t slot, int64_t head_dim) const;
  kernels::KvRows values(int64_t slot, int64_t head_dim) const;
  // Rounds (F16) or quantizes (Q8_0) n rows of kv_dim floats into K or V at pos, once.
  void store_k(int64_t slot, int64_t pos, const float* rows, int64_t n);
  void store_v(int64_t slot, int64_t pos, const float* rows, int64_t n);
  // The first n positions of a layer as rows in the cache's types, K rows then V rows: what
  // export_kv sends and import_kv receives, whatever the layout here.
  void export_rows(int64_t slot, int64_t n, uint8_t* out) const;
  void import_rows(int64_t slot, int64_t n, const uint8_t* in);
  model::KvTypes types() const { return types_; }
  size_t bytes() const { return bytes_; }

 private:
  KvCache(int64_t n_ctx, int64_t kv_dim, model::KvTypes types);
  bool keys_tiled() const { return kernels::tiles_keys(types_.k); }
  // The layer's keys with a head as long as the whole row (the layout does not depend on it).
  kernels::KvRows keys(int64_t slot) const { return keys(slot, kv_dim_); }
  // Key rows (as export_rows writes them) into positions [pos, pos + n), in this layout.
  void import_rows_of_keys(int64_t slot, int64_t pos, int64_t n, const uint8_t* in);
  uint8_t* k_base(int64_t slot) const { return data_ + slot * layer_bytes_; }
  uint8_t* v_base(int64_t slot) const { return k_base(slot) + k_positions_ * k_row_; }
  int64_t kv_dim_;
  model::KvTypes types_;
  size_t k_row_, v_row_;
  int64_t k_positions_;  // n_ctx, rounded up to whole tiles when the keys are tiled
  size_t layer_bytes_;
  size_t bytes_ = 0;
  uint8_t* data_ = nullptr;
};

}  // namespace ll::exec
