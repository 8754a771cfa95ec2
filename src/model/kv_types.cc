#include "model/kv_types.h"

namespace ll::model {

Result<DType> parse_kv_type(std::string_view name) {
  const std::optional<DType> t = dtype_from_name(name);
  if (t && (*t == DType::F32 || *t == DType::F16 || *t == DType::Q8_0)) return *t;
  return Status::Errorf("unknown KV cache type '{}': use f32, f16 or q8_0", name);
}

std::string kv_type_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::Q8_0: return "q8_0";
    default: return std::string(dtype_name(t));
  }
}

Status check_kv_types(const HParams& hp, KvTypes types) {
  for (const auto& [what, t] : {std::pair{"K", types.k}, std::pair{"V", types.v}}) {
    if (t != DType::F32 && t != DType::F16 && t != DType::Q8_0) {
      return Status::Errorf("{} cache type {} is not supported: use f32, f16 or q8_0", what, kv_type_name(t));
    }
    const int64_t block = dtype_info(t).block_elems;
    if (hp.head_dim % block != 0) {
      return Status::Errorf("{} cache type {} stores blocks of {} values, which do not divide the model's head length "
                            "of {}: use f16 or f32 for this model", what, kv_type_name(t), block, hp.head_dim);
    }
  }
  return Status::Ok();
}

}  // namespace ll::model
