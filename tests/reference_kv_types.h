#pragma once
// The references in the shared data (llama.cpp with -ctk f32 -ctv f32, llama2.c's float math)
// were computed with an F32 KV cache; the tests that hold logits to them use one too.
#include "model/kv_types.h"

namespace ll::test {
inline constexpr model::KvTypes kReferenceKvTypes{DType::F32, DType::F32};
}  // namespace ll::test
