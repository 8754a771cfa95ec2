// Row operations of the forward pass. The long loops over hidden or head dimensions (dot,
// axpy, add, sum of squares) use Highway with run-time dispatch; softmax and silu follow
// ggml's scalar definitions with the C library's expf.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/ops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/ops.h"
#include "kernels/quantize.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of x[i]^2: each square is rounded to float and summed in double, as ggml's rms_norm.
double SumOfSquares(const float* x, int64_t n) {
  int64_t i = 0;
  double sum = 0.0;
#if HWY_HAVE_FLOAT64
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;  // as many floats as doubles
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  auto acc0 = hn::Zero(dd), acc1 = hn::Zero(dd);
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto a = hn::LoadU(df, x + i), b = hn::LoadU(df, x + i + N);
    acc0 = hn::Add(acc0, hn::PromoteTo(dd, hn::Mul(a, a)));
    acc1 = hn::Add(acc1, hn::PromoteTo(dd, hn::Mul(b, b)));
  }
  sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(acc0, acc1)));
#endif
  for (; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  return sum;
}

float Dot(const float* a, const float* b, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df), acc2 = hn::Zero(df), acc3 = hn::Zero(df);
  int64_t i = 0;
  // Four accumulators hide the latency of the fused multiply-adds.
  for (; i + 4 * N <= n; i += 4 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), acc1);
    acc2 = hn::MulAdd(hn::LoadU(df, a + i + 2 * N), hn::LoadU(df, b + i + 2 * N), acc2);
    acc3 = hn::MulAdd(hn::LoadU(df, a + i + 3 * N), hn::LoadU(df, b + i + 3 * N), acc3);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(acc0, acc1), hn::Add(acc2, acc3))));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void Axpy(float* y, float a, const float* x, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto va = hn::Set(df, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

void AddInplace(float* y, const float* x, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

// out = (x * scale) * weight: ggml normalizes, then multiplies by the weight as a second op.
void ScaleMul(float* out, const float* x, float scale, const float* weight, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto vs = hn::Set(df, scale);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, x + i), vs), hn::LoadU(df, weight + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ll::kernels {

HWY_EXPORT(SumOfSquares);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);
HWY_EXPORT(AddInplace);
HWY_EXPORT(ScaleMul);

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  const float mean = static_cast<float>(HWY_DYNAMIC_DISPATCH(SumOfSquares)(x, n) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  HWY_DYNAMIC_DISPATCH(ScaleMul)(out, x, scale, weight, n);
}

void layernorm(float* out, const float* x, const float* weight, const float* bias, int64_t n, float eps) {
  // As ggml: the mean and the variance summed in double, the centered values in float.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const auto mean = static_cast<float>(sum / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] - mean;
  const auto variance = static_cast<float>(HWY_DYNAMIC_DISPATCH(SumOfSquares)(out, n) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(variance + eps);
  HWY_DYNAMIC_DISPATCH(ScaleMul)(out, out, scale, weight, n);
  if (bias != nullptr) HWY_DYNAMIC_DISPATCH(AddInplace)(out, bias, n);
}

namespace {

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f, kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoef * x * x)));
}

// gelu of every fp16 value, itself rounded to fp16: llama.cpp reads its GELU from such a table.
const std::vector<uint16_t>& gelu_fp16_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(1 << 16);
    for (uint32_t h = 0; h < t.size(); ++h) t[h] = fp32_to_fp16(gelu_tanh(fp16_to_fp32(static_cast<uint16_t>(h))));
    return t;
  }();
  return table;
}

float gelu_one(float x, const std::vector<uint16_t>& table) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_fp32(table[fp32_to_fp16(x)]);
}

}  // namespace

void gelu(float* x, int64_t n) {
  const auto& table = gelu_fp16_table();
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_one(x[i], table);
}

void gelu_mul(float* gate, const float* up, int64_t n) {
  const auto& table = gelu_fp16_table();
  for (int64_t i = 0; i < n; ++i) gate[i] = gelu_one(gate[i], table) * up[i];
}

void softcap(float* x, int64_t n, float cap) {
  // As ggml: scale, tanh, scale as three rounded steps.
  const float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv) * cap;
}

void softmax(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  // As ggml: exponentials in float, their sum in double, then one scale.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add_inplace(float* y, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(AddInplace)(y, x, n); }

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }

void axpy(float* y, float a, const float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Axpy)(y, a, x, n); }

}  // namespace ll::kernels
#endif  // HWY_ONCE
