// Per-target pieces every matmul kernel shares: vector tags, unaligned loads, the walk over
// tiles of weight rows x tokens with its prefetch, and the float-weight tiles. Included by
// the kernel files and matmul_simd.cc, once per SIMD target (hence no #pragma once).
#include <algorithm>
#include <cstring>

#include "hwy/cache_control.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

#if defined(LL_KERNELS_MATMUL_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_TILES_INL_H_
#undef LL_KERNELS_MATMUL_TILES_INL_H_
#else
#define LL_KERNELS_MATMUL_TILES_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The 256-bit intrinsic path serves AVX2 and every better x86 target (they all run AVX2
// instructions on 256-bit vectors; the kernels are memory bound, so 512 bits gain nothing).
#undef LL_X86_AVX2
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define LL_X86_AVX2 1
#else
#define LL_X86_AVX2 0
#endif

// At most 8 float lanes: every activation block (32 or 256 elements) is a whole number of
// vectors on every target.
using DF = hn::CappedTag<float, 8>;
using DI32 = hn::RebindToSigned<DF>;

HWY_INLINE uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

HWY_INLINE uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------- tiling

// Calls tile.template operator()<R, T>(row, token) over rows [r0, r1) x all tokens, with
// tiles of R rows x T tokens and smaller tiles at the edges. Rows are walked in blocks whose
// weights stay in L2 while every token tile reuses them.
template <int R, int T, class Tile>
HWY_INLINE void ForEachTileT(Tile& tile, int64_t r, int64_t t, int64_t tn) {
  if constexpr (T > 1) {
    if (tn < T) return ForEachTileT<R, T - 1>(tile, r, t, tn);
  }
  tile.template operator()<R, T>(r, t);
}

// Rows of [r0, r1) walked per block so that the block's weights stay in L2 while every tile of
// T tokens reuses them (a whole multiple of R rows); one block when one tile takes every token.
HWY_INLINE int64_t L2RowBlock(const MatmulJob& job, int64_t r0, int64_t r1, int64_t R, int64_t T) {
  constexpr int64_t kL2Budget = 96 * 1024;
  if (job.n <= T) return r1 - r0;
  return std::max<int64_t>(R, kL2Budget / std::max<int64_t>(1, job.row_bytes) / R * R);
}

template <int R, int T, class Tile>
void ForEachTile(const MatmulJob& job, int64_t r0, int64_t r1, Tile& tile) {
  const int64_t row_block = L2RowBlock(job, r0, r1, R, T);
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    for (int64_t t = 0; t < job.n; t += T) {
      const int64_t tn = std::min<int64_t>(T, job.n - t);
      int64_t r = rb;
      for (; r + R <= re; r += R) ForEachTileT<R, T>(tile, r, t, tn);
      for (; r < re; ++r) ForEachTileT<1, T>(tile, r, t, tn);
    }
  }
}

// ForEachTile over every chunk of rows this thread takes from the dispenser.
template <int R, int T, class Tile>
void ForEachChunk(const MatmulJob& job, RowDispenser& rows, Tile&& tile) {
  int64_t r0, r1;
  while (rows.next(&r0, &r1)) ForEachTile<R, T>(job, r0, r1, tile);
}

// A tile reads its R rows side by side, which the hardware prefetcher follows poorly (R short
// streams). The next tile's rows are contiguous right after these, so each step of a tile
// prefetches the matching slice of them, sweeping the next tile linearly: step p of a tile
// whose rows hold `bytes_per_step` bytes per step covers [p, p + 1) * bytes_per_step.
HWY_INLINE void PrefetchNextTile(const uint8_t* next_tile, int64_t bytes_per_step, int64_t p) {
  const uint8_t* start = next_tile + p * bytes_per_step;
  for (int64_t offset = 0; offset < bytes_per_step; offset += 64) hwy::Prefetch(start + offset);
}

// ---------------------------------------------------------------- float weights

template <DType kType>
HWY_INLINE hn::Vec<DF> LoadWeightsF32(const uint8_t* p) {
  const DF df;
  if constexpr (kType == DType::F32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(p));
  } else if constexpr (kType == DType::F16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  } else {
    const hn::Rebind<hwy::bfloat16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::bfloat16_t*>(p)));
  }
}

template <DType kType>
HWY_INLINE float ScalarWeight(const uint8_t* p) {
  if constexpr (kType == DType::F32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  } else if constexpr (kType == DType::F16) {
    return fp16_to_fp32(LoadU16(p));
  } else {
    return bf16_to_fp32(LoadU16(p));
  }
}

template <DType kType>
struct FloatTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    constexpr int64_t kElemBytes = kType == DType::F32 ? 4 : 2;
    const DF df;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    const uint8_t* w[R];
    for (int r = 0; r < R; ++r) w[r] = job.w + (r0 + r) * job.row_bytes;
    const float* x[T];
    for (int t = 0; t < T; ++t) x[t] = job.x + (t0 + t) * job.cols;
    hn::Vec<DF> acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
    const uint8_t* next_tile = w[0] + R * job.row_bytes;
    int64_t k = 0;
    for (; k + N <= job.cols; k += N) {
      PrefetchNextTile(next_tile, R * N * kElemBytes, k / N);
      hn::Vec<DF> wv[R];
      for (int r = 0; r < R; ++r) wv[r] = LoadWeightsF32<kType>(w[r] + k * kElemBytes);
      for (int t = 0; t < T; ++t) {
        const auto xv = hn::LoadU(df, x[t] + k);
        for (int r = 0; r < R; ++r) acc[r][t] = hn::MulAdd(wv[r], xv, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int t = 0; t < T; ++t) {
        float sum = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
        for (int64_t j = k; j < job.cols; ++j) sum += ScalarWeight<kType>(w[r] + j * kElemBytes) * x[t][j];
        job.y[(t0 + t) * job.rows + r0 + r] = sum;
      }
    }
  }
};

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_TILES_INL_H_ toggle
