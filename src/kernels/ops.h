#pragma once
// Element-wise and row operations of the transformer forward pass.
#include <cstdint>

namespace ll::kernels {

// out = x / rms(x) * weight, over n elements.
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps);
// out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias (bias may be null), over n elements.
void layernorm(float* out, const float* x, const float* weight, const float* bias, int64_t n, float eps);
// In-place softmax over n elements.
void softmax(float* x, int64_t n);
// gate[i] = silu(gate[i]) * up[i]
void silu_mul(float* gate, const float* up, int64_t n);
// x[i] = gelu(x[i]), the tanh approximation as ggml computes it: rounded to fp16 and back,
// which is what llama.cpp's CPU backend does, so that outputs agree with it.
void gelu(float* x, int64_t n);
// gate[i] = gelu(gate[i]) * up[i]
void gelu_mul(float* gate, const float* up, int64_t n);
// x[i] = cap * tanh(x[i] / cap)
void softcap(float* x, int64_t n, float cap);
// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);
// dot product of two float vectors
float dot_f32(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void axpy(float* y, float a, const float* x, int64_t n);

}  // namespace ll::kernels
