// Integer matmul kernels in portable Highway, for every target LL_X86_AVX2 does not select
// (NEON, SSSE3, SSE4, the emulated fallback); the others compile matmul_avx2-inl.h instead.
#include "core/quant_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

#if defined(LL_KERNELS_MATMUL_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_HWY_INL_H_
#undef LL_KERNELS_MATMUL_HWY_INL_H_
#else
#define LL_KERNELS_MATMUL_HWY_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if !LL_X86_AVX2

// int16 vectors of at most 16 lanes; int8 values are widened, multiplied pairwise and
// accumulated into int32 with ReorderWidenMulAccumulate.
using D16 = hn::CappedTag<int16_t, 16>;
using D32 = hn::Repartition<int32_t, D16>;
using DF32 = hn::Rebind<float, D32>;

HWY_INLINE hn::Vec<D16> LoadI8(const int8_t* p) {
  const D16 d16;
  return hn::PromoteTo(d16, hn::LoadU(hn::Rebind<int8_t, D16>(), p));
}

HWY_INLINE hn::Vec<D16> LoadU8(const uint8_t* p) {
  const D16 d16;
  return hn::BitCast(d16, hn::PromoteTo(hn::RebindToUnsigned<D16>(), hn::LoadU(hn::Rebind<uint8_t, D16>(), p)));
}

// Sum over n elements of w[i] * x[i] given as int16 vector pairs, into an int32 vector.
struct DotAcc {
  HWY_INLINE DotAcc() : s0(hn::Zero(D32())), s1(hn::Zero(D32())) {}
  hn::Vec<D32> s0, s1;
  HWY_INLINE void Add(hn::Vec<D16> w, hn::Vec<D16> x) { s0 = hn::ReorderWidenMulAccumulate(D32(), w, x, s0, s1); }
  HWY_INLINE hn::Vec<D32> Total() const { return hn::RearrangeToOddPlusEven(s0, s1); }
};

HWY_INLINE float F16ToF32(const uint8_t* p) { return fp16_to_fp32(LoadU16(p)); }

template <DType kType>
struct PortableTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r, int64_t t) const {
    static_assert(R == 1 && T == 1);
    const D16 d16;
    const DF32 df;
    const size_t N = hn::Lanes(d16);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r * job.row_bytes;
    const float* xd = a.d + t * nb;
    auto acc = hn::Zero(df);
    float scalar_acc = 0;  // terms that are already one number per block
    if constexpr (kType == DType::Q4_0 || kType == DType::Q8_0) {
      const int8_t* xq = a.qs + t * nb * 32;
      for (int64_t b = 0; b < nb; ++b, xq += 32) {
        DotAcc dot;
        if constexpr (kType == DType::Q4_0) {
          const uint8_t* blk = w + b * sizeof(BlockQ4_0);
          for (size_t k = 0; k < 16; k += N) {
            const auto q = LoadU8(blk + 2 + k);
            const auto eight = hn::Set(d16, 8);
            dot.Add(hn::Sub(hn::And(q, hn::Set(d16, 0xF)), eight), LoadI8(xq + k));
            dot.Add(hn::Sub(hn::ShiftRight<4>(q), eight), LoadI8(xq + 16 + k));
          }
          acc = hn::MulAdd(hn::ConvertTo(df, dot.Total()), hn::Set(df, F16ToF32(blk) * xd[b]), acc);
        } else {
          const uint8_t* blk = w + b * sizeof(BlockQ8_0);
          for (size_t k = 0; k < 32; k += N) {
            dot.Add(LoadI8(reinterpret_cast<const int8_t*>(blk + 2 + k)), LoadI8(xq + k));
          }
          acc = hn::MulAdd(hn::ConvertTo(df, dot.Total()), hn::Set(df, F16ToF32(blk) * xd[b]), acc);
        }
      }
    } else if constexpr (kType == DType::Q4_K) {
      const int8_t* xq = a.qs + t * nb * kQK_K;
      const int16_t* bsums = a.bsums + t * nb * 16;
      for (int64_t b = 0; b < nb; ++b, xq += kQK_K, bsums += 16) {
        const uint8_t* blk = w + b * sizeof(BlockQ4_K);
        const uint8_t* s = blk + 4;
        auto isum = hn::Zero(D32());
        int32_t imin = 0;
        for (int j = 0; j < 8; ++j) {
          const int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
          const int m = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
          const uint8_t* q = blk + 16 + 32 * (j / 2);
          DotAcc dot;
          for (size_t k = 0; k < 32; k += N) {
            const auto qv = LoadU8(q + k);
            dot.Add(j % 2 ? hn::ShiftRight<4>(qv) : hn::And(qv, hn::Set(d16, 0xF)), LoadI8(xq + 32 * j + k));
          }
          isum = hn::Add(isum, hn::Mul(dot.Total(), hn::Set(D32(), sc)));
          imin += m * (bsums[2 * j] + bsums[2 * j + 1]);
        }
        acc = hn::MulAdd(hn::ConvertTo(df, isum), hn::Set(df, F16ToF32(blk) * xd[b]), acc);
        scalar_acc -= (F16ToF32(blk + 2) * xd[b]) * static_cast<float>(imin);
      }
    } else {
      static_assert(kType == DType::Q6_K);
      const int8_t* xq = a.qs + t * nb * kQK_K;
      for (int64_t b = 0; b < nb; ++b, xq += kQK_K) {
        const uint8_t* blk = w + b * sizeof(BlockQ6_K);
        const int8_t* scales = reinterpret_cast<const int8_t*>(blk + 192);
        auto isum = hn::Zero(D32());
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ql = blk + 64 * h;
          const uint8_t* qh = blk + 128 + 32 * h;
          for (int k = 0; k < 4; ++k) {
            for (int half = 0; half < 2; ++half) {  // groups of 16 within the 32 elements
              DotAcc dot;
              for (size_t l = 16 * half; l < 16 * half + 16u; l += N) {
                const auto lo4 = LoadU8(ql + 32 * (k & 1) + l);
                const auto lo = k < 2 ? hn::And(lo4, hn::Set(d16, 0xF)) : hn::ShiftRight<4>(lo4);
                const auto hi = hn::And(hn::ShiftRightSame(LoadU8(qh + l), 2 * k), hn::Set(d16, 3));
                const auto q = hn::Sub(hn::Or(lo, hn::ShiftLeft<4>(hi)), hn::Set(d16, 32));
                dot.Add(q, LoadI8(xq + 128 * h + 32 * k + l));
              }
              isum = hn::Add(isum, hn::Mul(dot.Total(), hn::Set(D32(), scales[8 * h + 2 * k + half])));
            }
          }
        }
        acc = hn::MulAdd(hn::ConvertTo(df, isum), hn::Set(df, F16ToF32(blk + 208) * xd[b]), acc);
      }
    }
    job.y[t * job.rows + r] = hn::GetLane(hn::SumOfLanes(df, acc)) + scalar_acc;
  }
};

// Weight rows of every chunk taken from `rows`, for the integer weight types.
void QuantizedMatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::Q4_0:
      return ForEachChunk<1, 1>(job, rows, PortableTile<DType::Q4_0>{job});
    case DType::Q8_0:
      return ForEachChunk<1, 1>(job, rows, PortableTile<DType::Q8_0>{job});
    case DType::Q4_K:
      return ForEachChunk<1, 1>(job, rows, PortableTile<DType::Q4_K>{job});
    case DType::Q6_K:
      return ForEachChunk<1, 1>(job, rows, PortableTile<DType::Q6_K>{job});
    default:
      return;
  }
}

#endif  // !LL_X86_AVX2

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_HWY_INL_H_ toggle
