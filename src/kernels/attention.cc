// Streaming attention over F32 / F16 / Q8_0 cache rows. Each block of positions is scored for
// every query head of the group while its key row is in registers (decoded once), then the
// value rows are decoded once and added to every head's output with the block's weights.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/check.h"
#include "core/quant_blocks.h"
#include "kernels/attention.h"
#include "kernels/quantize.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Positions per block: their scores of all heads of a group stay in L1.
constexpr int64_t kBlock = 64;

// dst = the n values of one cache row in float.
static HWY_INLINE void DecodeRow(DType type, const uint8_t* src, float* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (type == DType::F16) {
    const hn::Rebind<hwy::float16_t, decltype(df)> dh;
    const auto* h = reinterpret_cast<const hwy::float16_t*>(src);
    int64_t i = 0;
    for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, dst + i);
    if (i < n) dequantize_row(DType::F16, src + 2 * i, dst + i, n - i);
  } else {
    const hn::Rebind<int32_t, decltype(df)> di;
    const hn::Rebind<int8_t, decltype(df)> d8;
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
      const uint8_t* blk = src + b * static_cast<int64_t>(sizeof(BlockQ8_0));
      uint16_t bits;
      std::memcpy(&bits, blk, 2);
      const float d = fp16_to_fp32(bits);
      const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
      float* out = dst + b * kQK8_0;
      int64_t j = 0;
      for (; j + N <= kQK8_0; j += N) {
        const auto q = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, qs + j)));
        hn::StoreU(hn::Mul(q, hn::Set(df, d)), df, out + j);
      }
      for (; j < kQK8_0; ++j) out[j] = static_cast<float>(qs[j]) * d;
    }
  }
}

static HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// y = y + a * x
static HWY_INLINE void Axpy(float* y, float a, const float* x, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto va = hn::Set(df, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] += a * x[i];
}

// s[p] = exp(s[p] - m) for p < n; returns their sum. Vector exp: a scalar one per score was a
// large share of the time per cached position.
static HWY_INLINE float ExpShiftedSum(float* s, float m, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto vm = hn::Set(df, m);
  auto acc = hn::Zero(df);
  int64_t p = 0;
  for (; p + N <= n; p += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, s + p), vm));
    hn::StoreU(e, df, s + p);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; p < n; ++p) sum += (s[p] = std::exp(s[p] - m));
  return sum;
}

void Attend(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out) {
  const int64_t hd = q.head_dim, nq = q.n_q;
  thread_local std::vector<float> row, scores, max, sum;
  row.resize(hd);
  scores.resize(nq * kBlock);
  max.assign(nq, -std::numeric_limits<float>::infinity());
  sum.assign(nq, 0.0f);
  std::fill(out, out + nq * hd, 0.0f);
  for (int64_t b0 = 0; b0 < len; b0 += kBlock) {
    const int64_t bn = std::min(kBlock, len - b0);
    for (int64_t p = 0; p < bn; ++p) {
      const int64_t pos = first + b0 + p;
      DecodeRow(k.type, k.data + pos * k.stride, row.data(), hd);
      for (int64_t h = 0; h < nq; ++h) {
        float s = Dot(q.q + h * hd, row.data(), hd) * q.scale;
        if (q.softcap > 0.0f) s = q.softcap * std::tanh(s / q.softcap);
        if (q.alibi != nullptr) s -= q.alibi[h] * static_cast<float>(q.query - pos);
        scores[h * kBlock + p] = s;
      }
    }
    for (int64_t h = 0; h < nq; ++h) {
      float* s = &scores[h * kBlock];
      const float m = std::max(max[h], *std::max_element(s, s + bn));
      const float rescale = std::exp(max[h] - m);  // 0 on the first block (max = -inf)
      sum[h] = sum[h] * rescale + ExpShiftedSum(s, m, bn);
      max[h] = m;
      if (rescale != 1.0f) {
        for (int64_t i = 0; i < hd; ++i) out[h * hd + i] *= rescale;
      }
    }
    for (int64_t p = 0; p < bn; ++p) {
      DecodeRow(v.type, v.data + (first + b0 + p) * v.stride, row.data(), hd);
      for (int64_t h = 0; h < nq; ++h) Axpy(out + h * hd, scores[h * kBlock + p], row.data(), hd);
    }
  }
  for (int64_t h = 0; h < nq; ++h) {
    const float inv = 1.0f / sum[h];
    for (int64_t i = 0; i < hd; ++i) out[h * hd + i] *= inv;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ll::kernels {

HWY_EXPORT(Attend);

void attend(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out) {
  LL_CHECK(len >= 1);
  HWY_DYNAMIC_DISPATCH(Attend)(q, k, v, first, len, out);
}

void attend_reference(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out) {
  LL_CHECK(len >= 1);
  const int64_t hd = q.head_dim;
  std::vector<float> keys(len * hd), values(len * hd), s(len);
  for (int64_t p = 0; p < len; ++p) {
    dequantize_row(k.type, k.data + (first + p) * k.stride, &keys[p * hd], hd);
    dequantize_row(v.type, v.data + (first + p) * v.stride, &values[p * hd], hd);
  }
  for (int64_t h = 0; h < q.n_q; ++h) {
    const float* qh = q.q + h * hd;
    for (int64_t p = 0; p < len; ++p) {
      float dot = 0.0f;
      for (int64_t i = 0; i < hd; ++i) dot += qh[i] * keys[p * hd + i];
      s[p] = dot * q.scale;
      if (q.softcap > 0.0f) s[p] = q.softcap * std::tanh(s[p] / q.softcap);
      if (q.alibi != nullptr) s[p] -= q.alibi[h] * static_cast<float>(q.query - (first + p));
    }
    const float m = *std::max_element(s.begin(), s.end());
    float total = 0.0f;
    for (float& x : s) total += (x = std::exp(x - m));
    float* oh = out + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for (int64_t p = 0; p < len; ++p) {
      for (int64_t i = 0; i < hd; ++i) oh[i] += s[p] / total * values[p * hd + i];
    }
  }
}

}  // namespace ll::kernels
#endif  // HWY_ONCE
