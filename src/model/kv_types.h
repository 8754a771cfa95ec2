#pragma once
// The element types of the KV cache: keys and values are each stored as F32, F16 (the default,
// as llama.cpp's) or Q8_0. Every count of KV bytes (executor, graph, planner, migration) reads
// the types from here.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "core/status.h"
#include "model/hparams.h"

namespace ll::model {

struct KvTypes {
  DType k = DType::F16;
  DType v = DType::F16;
  bool operator==(const KvTypes&) const = default;
};

// "f32", "f16" or "q8_0" (any case); anything else is an error naming the choices.
Result<DType> parse_kv_type(std::string_view name);
// The name parse_kv_type reads: "f32", "f16", "q8_0".
std::string kv_type_name(DType t);
// A Q8_0 cache stores every head's slice of a row as whole blocks, so the head length must be
// a multiple of 32 (llama.cpp requires the same of its quantized caches).
Status check_kv_types(const HParams& hp, KvTypes types);
// Bytes of one position's K row plus V row of one attention layer.
inline uint64_t kv_row_bytes(const HParams& hp, KvTypes types) {
  return static_cast<uint64_t>(row_bytes(types.k, hp.kv_dim()) + row_bytes(types.v, hp.kv_dim()));
}

}  // namespace ll::model
