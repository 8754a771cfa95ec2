// Integer matmul kernels of the other 32-element types (Q4_1, Q5_0, Q5_1, IQ4_NL) in portable
// Highway, for every target. Each block's quants are widened to int16 with their offset or
// level applied and multiplied pairwise with the Q8_0 / Q8_1 activations into int32 lanes; the
// per-block scale multiplies the lanes, and the Q8_1 block sums s the weights' minimum.
#include "core/quant_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

#if defined(LL_KERNELS_MATMUL_Q32_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_Q32_HWY_INL_H_
#undef LL_KERNELS_MATMUL_Q32_HWY_INL_H_
#else
#define LL_KERNELS_MATMUL_Q32_HWY_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace q32 {
namespace hn = hwy::HWY_NAMESPACE;

// int16 vectors of 8 or 16 lanes: a block half (16 elements) is one or two vectors.
using D16 = hn::CappedTag<int16_t, 16>;
using D32 = hn::Repartition<int32_t, D16>;
using DF32 = hn::Rebind<float, D32>;
using D8 = hn::CappedTag<uint8_t, 16>;  // one 16-byte table or row of nibbles

// Bit k of lane k, for testing the 16 high bits of one block half of Q5_0 / Q5_1.
alignas(32) constexpr uint16_t kLaneBit[16] = {1u << 0,  1u << 1,  1u << 2,  1u << 3, 1u << 4,  1u << 5,
                                               1u << 6,  1u << 7,  1u << 8,  1u << 9, 1u << 10, 1u << 11,
                                               1u << 12, 1u << 13, 1u << 14, 1u << 15};

HWY_INLINE hn::Vec<D16> WidenI8(const int8_t* p) {
  return hn::PromoteTo(D16(), hn::LoadU(hn::Rebind<int8_t, D16>(), p));
}

HWY_INLINE hn::Vec<D16> WidenU8(const uint8_t* p) {
  const D16 d16;
  return hn::BitCast(d16, hn::PromoteTo(hn::RebindToUnsigned<D16>(), hn::LoadU(hn::Rebind<uint8_t, D16>(), p)));
}

// 16 where bit k + lane of `bits` is set, else 0: the fifth bit of elements k .. k + lanes.
HWY_INLINE hn::Vec<D16> HighBits(uint16_t bits, size_t k) {
  const D16 d16;
  const auto lane_bits = hn::BitCast(d16, hn::LoadU(hn::RebindToUnsigned<D16>(), kLaneBit + k));
  return hn::IfThenElseZero(hn::TestBit(hn::Set(d16, static_cast<int16_t>(bits)), lane_bits), hn::Set(d16, 16));
}

// Layout of the 32-element block types: where the fields are, and how a quant becomes its level.
template <DType kType>
struct Q32Layout {
  static constexpr bool kMin = kType == DType::Q4_1 || kType == DType::Q5_1;
  static constexpr bool kHighBit = kType == DType::Q5_0 || kType == DType::Q5_1;
  static constexpr int64_t kQhOffset = kMin ? 4 : 2;
  static constexpr int64_t kQsOffset = kQhOffset + (kHighBit ? 4 : 0);
  static constexpr int64_t kBytes = kQsOffset + 16;
};

template <DType kType>
struct Q32Tile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r, int64_t t) const {
    static_assert(R == 1 && T == 1);
    using L = Q32Layout<kType>;
    static_assert(L::kBytes == (kType == DType::Q4_1   ? sizeof(BlockQ4_1)
                                : kType == DType::Q5_0 ? sizeof(BlockQ5_0)
                                : kType == DType::Q5_1 ? sizeof(BlockQ5_1)
                                                       : sizeof(BlockIQ4_NL)));
    const D16 d16;
    const DF32 df;
    const size_t N = hn::Lanes(d16);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r * job.row_bytes;
    const int8_t* xq = a.qs + t * nb * 32;
    const float* xd = a.d + t * nb;
    auto acc = hn::Zero(df);
    float min_acc = 0;  // the minimum's terms are one number per block
    for (int64_t b = 0; b < nb; ++b, w += L::kBytes, xq += 32) {
      const uint8_t* qs = w + L::kQsOffset;
      auto s0 = hn::Zero(D32()), s1 = hn::Zero(D32());
      if constexpr (kType == DType::IQ4_NL) {
        // The nibbles index the 16 levels (a byte shuffle; one lane at a time on the scalar
        // target, whose vectors hold one byte), then multiply as int8.
        HWY_ALIGN int8_t levels[32];
#if HWY_TARGET == HWY_SCALAR
        for (int j = 0; j < 16; ++j) {
          levels[j] = kIQ4NLValues[qs[j] & 0xF];
          levels[j + 16] = kIQ4NLValues[qs[j] >> 4];
        }
#else
        const D8 d8;
        const auto table = hn::LoadU(d8, reinterpret_cast<const uint8_t*>(kIQ4NLValues));
        const auto q = hn::LoadU(d8, qs);
        auto* out = reinterpret_cast<uint8_t*>(levels);
        hn::Store(hn::TableLookupBytes(table, hn::And(q, hn::Set(d8, 0xF))), d8, out);
        hn::Store(hn::TableLookupBytes(table, hn::ShiftRight<4>(q)), d8, out + 16);
#endif
        for (size_t k = 0; k < 32; k += N) {
          s0 = hn::ReorderWidenMulAccumulate(D32(), WidenI8(levels + k), WidenI8(xq + k), s0, s1);
        }
      } else {
        [[maybe_unused]] const uint32_t high = L::kHighBit ? LoadU32(w + L::kQhOffset) : 0;
        for (size_t k = 0; k < 16; k += N) {
          const auto q = WidenU8(qs + k);
          auto lo = hn::And(q, hn::Set(d16, 0xF));
          auto hi = hn::ShiftRight<4>(q);
          if constexpr (L::kHighBit) {
            lo = hn::Or(lo, HighBits(static_cast<uint16_t>(high), k));
            hi = hn::Or(hi, HighBits(static_cast<uint16_t>(high >> 16), k));
          }
          if constexpr (kType == DType::Q5_0) {
            lo = hn::Sub(lo, hn::Set(d16, 16));
            hi = hn::Sub(hi, hn::Set(d16, 16));
          }
          s0 = hn::ReorderWidenMulAccumulate(D32(), lo, WidenI8(xq + k), s0, s1);
          s0 = hn::ReorderWidenMulAccumulate(D32(), hi, WidenI8(xq + 16 + k), s0, s1);
        }
      }
      const float d = fp16_to_fp32(LoadU16(w));
      acc = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0, s1)), hn::Set(df, d * xd[b]), acc);
      if constexpr (L::kMin) min_acc += fp16_to_fp32(LoadU16(w + 2)) * a.s[t * nb + b];
    }
    job.y[t * job.rows + r] = hn::GetLane(hn::SumOfLanes(df, acc)) + min_acc;
  }
};

}  // namespace q32

// Weight rows of every chunk taken from `rows`, for Q4_1, Q5_0, Q5_1 and IQ4_NL.
void Q32MatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::Q4_1:
      return ForEachChunk<1, 1>(job, rows, q32::Q32Tile<DType::Q4_1>{job});
    case DType::Q5_0:
      return ForEachChunk<1, 1>(job, rows, q32::Q32Tile<DType::Q5_0>{job});
    case DType::Q5_1:
      return ForEachChunk<1, 1>(job, rows, q32::Q32Tile<DType::Q5_1>{job});
    case DType::IQ4_NL:
      return ForEachChunk<1, 1>(job, rows, q32::Q32Tile<DType::IQ4_NL>{job});
    default:
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_Q32_HWY_INL_H_ toggle
