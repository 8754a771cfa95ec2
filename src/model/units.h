#pragma once
// The forward pass as an ordered list of units: embed, attn[0], ffn[0], ..., attn[L-1],
// ffn[L-1], head. Each unit reads and returns the hidden state (the residual stream), so any
// contiguous range of units can run on its own, on any device.
#include <cstdint>
#include <string>

#include "model/hparams.h"
#include "model/kv_types.h"

namespace ll::model {

enum class UnitKind { Embed, Attention, Ffn, Head };

struct Unit {
  UnitKind kind;
  int64_t layer;  // -1 for embed and head
};

inline int64_t unit_count(const HParams& hp) { return 2 * hp.n_layer + 2; }

inline Unit unit_at(const HParams& hp, int64_t index) {
  if (index == 0) return {UnitKind::Embed, -1};
  if (index == unit_count(hp) - 1) return {UnitKind::Head, -1};
  return {(index - 1) % 2 == 0 ? UnitKind::Attention : UnitKind::Ffn, (index - 1) / 2};
}

inline std::string unit_name(const Unit& u) {
  switch (u.kind) {
    case UnitKind::Embed: return "embed";
    case UnitKind::Attention: return "attn[" + std::to_string(u.layer) + "]";
    case UnitKind::Ffn: return "ffn[" + std::to_string(u.layer) + "]";
    case UnitKind::Head: return "head";
  }
  return "?";
}

// A contiguous range [begin, end) of unit indices.
struct UnitRange {
  int64_t begin = 0;
  int64_t end = 0;
  bool contains(int64_t i) const { return i >= begin && i < end; }
  bool empty() const { return end <= begin; }
};

inline UnitRange all_units(const HParams& hp) { return {0, unit_count(hp)}; }

// "units 3..6 (attn[1] to ffn[2]) of 12": the range with its first and last unit named.
inline std::string describe_units(const HParams& hp, UnitRange r) {
  return "units " + std::to_string(r.begin) + ".." + std::to_string(r.end - 1) + " (" + unit_name(unit_at(hp, r.begin)) +
         " to " + unit_name(unit_at(hp, r.end - 1)) + ") of " + std::to_string(unit_count(hp));
}

// Bytes of K and V (in the cache's types) one position adds to the cache of the units in `r`:
// attention units keep a cache, the others none.
inline uint64_t kv_bytes_per_token(const HParams& hp, UnitRange r, KvTypes types) {
  uint64_t total = 0;
  for (int64_t i = r.begin; i < r.end; ++i) {
    if (unit_at(hp, i).kind == UnitKind::Attention) total += kv_row_bytes(hp, types);
  }
  return total;
}

}  // namespace ll::model
