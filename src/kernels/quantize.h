#pragma once
// Conversion between float and every computable type, bit-compatible with GGUF block layouts.
#include <cstdint>

#include "core/dtype.h"

namespace ll::kernels {

bool is_quantized(DType t);
// n must be a multiple of the block size of t.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Reference (round-to-nearest) quantization as llama.cpp's quantize_row_*_ref.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// One Q8_K super-block of 256 floats as quantize_row_q8_K_ref, into separate fields (qs[256], *d,
// bsums[16]): quantize_row's block layout and the matmul's activation rows share this one copy.
void quantize_block_q8_k(const float* x, int8_t* qs, float* d, int16_t* bsums);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace ll::kernels
