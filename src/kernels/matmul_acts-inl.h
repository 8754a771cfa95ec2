// Quantization of activation rows to Q8_0 / Q8_K for the integer kernels, per SIMD target.
#include <algorithm>

#include "core/quant_blocks.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

#if defined(LL_KERNELS_MATMUL_ACTS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_ACTS_INL_H_
#undef LL_KERNELS_MATMUL_ACTS_INL_H_
#else
#define LL_KERNELS_MATMUL_ACTS_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------- activation quantization
// Bit-exact twins of quantize_q8_0_row / quantize_q8_k_row in matmul_reference.cc: the same
// float operations per element; only maxima and integer sums are computed with vectors.

// out[i] = x[i] * s[i / block] for a row of nb blocks. Out of line on purpose: the rounding
// that follows must see each product rounded to float, as the scalar twin does; inlined, the
// compiler may fuse the multiply into a following add (FMA) and skip that rounding.
HWY_NOINLINE void ScaleRow(const float* x, const float* s, float* out, int64_t nb, size_t block) {
  const DF df;
  for (int64_t b = 0; b < nb; ++b) {
    const auto vs = hn::Set(df, s[b]);
    for (size_t k = 0; k < block; k += hn::Lanes(df)) {
      hn::Store(hn::Mul(hn::LoadU(df, x + b * block + k), vs), df, out + b * block + k);
    }
  }
}

HWY_INLINE hn::Vec<DF> MaxAbsLanes(const float* x, size_t n) {
  const DF df;
  auto vmax = hn::Zero(df);
  for (size_t k = 0; k < n; k += hn::Lanes(df)) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, x + k)));
  return hn::MaxOfLanes(df, vmax);
}

// Stores 32 int32 values in [-128, 127] (four vectors of 8, or eight of 4) as int8.
template <class V>
HWY_INLINE void StoreI8x32(const V* q, int8_t* dst) {
#if LL_X86_AVX2
  const __m256i a = _mm256_packs_epi32(q[0].raw, q[1].raw);  // lanes interleaved by 128 bits
  const __m256i b = _mm256_packs_epi32(q[2].raw, q[3].raw);
  const __m256i packed = _mm256_packs_epi16(a, b);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                      _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
#else
  const DI32 di;
  const hn::Rebind<int8_t, DI32> d8;
  const size_t N = hn::Lanes(di);
  for (size_t k = 0; k < 32 / N; ++k) hn::StoreU(hn::DemoteTo(d8, q[k]), d8, dst + k * N);
#endif
}

// Per-thread scratch of n floats.
float* RowScratch(size_t n) {
  thread_local hwy::AlignedFreeUniquePtr<float[]> buffer;
  thread_local size_t capacity = 0;
  if (n > capacity) {
    buffer = hwy::AllocateAligned<float>(n);
    capacity = n;
  }
  return buffer.get();
}

void QuantizeRowQ8_0(const float* x, int64_t nb, int8_t* qs, float* d) {
  const DF df;
  const DI32 di;
  const size_t N = hn::Lanes(df);
  float* v = RowScratch(static_cast<size_t>(nb * 33));  // aligned products, then the scales
  float* ids = v + nb * 32;
  for (int64_t b = 0; b < nb; ++b) {
    const float scale = hn::GetLane(MaxAbsLanes(x + 32 * b, 32)) / 127;
    ids[b] = scale ? 1.0f / scale : 0.0f;
    d[b] = fp16_to_fp32(fp32_to_fp16(scale));
  }
  ScaleRow(x, ids, v, nb, 32);
  const auto half = hn::Set(df, 0.5f);
  const auto one = hn::Set(df, 1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    hn::Vec<DI32> q[32];  // 32 / lanes used
    for (size_t k = 0; k < 32 / N; ++k) {
      // roundf: half away from zero. |v| >= |trunc(v)| + 0.5 decides, compared exactly.
      const auto vk = hn::Load(df, v + 32 * b + k * N);
      const auto t = hn::Trunc(vk);
      const auto away = hn::Ge(hn::Abs(vk), hn::Add(hn::Abs(t), half));
      q[k] = hn::ConvertTo(di, hn::Add(t, hn::IfThenElseZero(away, hn::CopySignToAbs(one, vk))));
    }
    StoreI8x32(q, qs + 32 * b);
  }
}

void QuantizeRowQ8_K(const float* x, int64_t nb, int8_t* qs, float* d, int16_t* bsums) {
  const DF df;
  const DI32 di;
  const size_t N = hn::Lanes(df);
  float* v = RowScratch(kQK_K);
  for (int64_t b = 0; b < nb; ++b, x += kQK_K, qs += kQK_K, bsums += 16) {
    const auto vmax = MaxAbsLanes(x, kQK_K);
    const float amax = hn::GetLane(vmax);
    if (!amax) {
      d[b] = 0;
      std::fill(qs, qs + kQK_K, 0);
      std::fill(bsums, bsums + 16, 0);
      continue;
    }
    // The sign of the scale follows the first element of largest magnitude, as in ggml.
    size_t first = 0;
    for (;; first += N) {
      const intptr_t i = hn::FindFirstTrue(df, hn::Eq(hn::Abs(hn::LoadU(df, x + first)), vmax));
      if (i >= 0) {
        first += static_cast<size_t>(i);
        break;
      }
    }
    const float iscale = -127.f / x[first];
    ScaleRow(x, &iscale, v, 1, kQK_K);
    for (int g = 0; g < kQK_K / 32; ++g) {
      hn::Vec<DI32> q[32];  // 32 / lanes used
      for (size_t k = 0; k < 32 / N; ++k) {
        // nearest_int: round half to even through the 1.5 * 2^23 bias, as the scalar twin.
        const auto biased = hn::BitCast(di, hn::Add(hn::Load(df, v + 32 * g + k * N), hn::Set(df, 12582912.f)));
        q[k] = hn::Min(hn::Sub(hn::And(biased, hn::Set(di, 0x007fffff)), hn::Set(di, 0x00400000)), hn::Set(di, 127));
      }
      StoreI8x32(q, qs + 32 * g);
      for (int h = 0; h < 2; ++h) {
        auto sum = q[h * 16 / N];
        for (size_t k = 1; k < 16 / N; ++k) sum = hn::Add(sum, q[h * 16 / N + k]);
        bsums[2 * g + h] = static_cast<int16_t>(hn::GetLane(hn::SumOfLanes(di, sum)));
      }
    }
    d[b] = 1 / iscale;
  }
}

void QuantizeActs(const MatmulJob& job, int64_t t0, int64_t t1) {
  const QuantizedActs& a = job.acts;
  const int be = act_block_elems(job.type);
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = job.x + t * job.cols;
    if (be == 32) {
      QuantizeRowQ8_0(x, a.blocks, a.qs + t * a.blocks * 32, a.d + t * a.blocks);
      if (a.s) q8_1_block_sums(x, a.qs + t * a.blocks * 32, a.blocks, a.s + t * a.blocks);
    } else if (be == kQK_K) {
      QuantizeRowQ8_K(x, a.blocks, a.qs + t * a.blocks * kQK_K, a.d + t * a.blocks,
                      a.bsums + t * a.blocks * 16);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_ACTS_INL_H_ toggle
