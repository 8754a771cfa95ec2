// Matmul kernels of Q5_K, Q3_K, Q2_K and IQ4_XS weights x Q8_K activations in portable
// Highway, the same code on every target. Per weight block the quants are unpacked once,
// with 16-byte vectors, into int16 values already multiplied by their sub-block scale
// (|q * scale| <= 127 * 32 fits); each token of the tile then needs one int16 dot product of
// 256 elements, one conversion and one multiply-add per block. The min terms of Q5_K and
// Q2_K come from the activations' bsums, as in the scalar twins of matmul_reference.cc.
#include "core/quant_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

#if defined(LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_
#undef LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_
#else
#define LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace kquant {
namespace hn = hwy::HWY_NAMESPACE;

using DU8 = hn::CappedTag<uint8_t, 16>;  // unpacking: up to 16 quants at a time
using D16 = hn::CappedTag<int16_t, 16>;
using D32 = hn::Repartition<int32_t, D16>;
using DF32 = hn::Rebind<float, D32>;

// A weight block unpacked: w16[e] = q[e] * scale of e's sub-block; per 16 elements the
// min (Q5_K, Q2_K; 0 otherwise); d and dmin the block's float scales.
struct Unpacked {
  alignas(64) int16_t w16[kQK_K];
  int16_t mins[16];
  float d;
  float dmin;
};

HWY_INLINE float HalfAt(const uint8_t* p) { return fp16_to_fp32(LoadU16(p)); }

HWY_INLINE hn::Vec<DU8> Bits(uint8_t mask) { return hn::Set(DU8(), mask); }

HWY_INLINE hn::Vec<DU8> ShiftMask(hn::Vec<DU8> v, int shift, uint8_t mask) {
  return hn::And(hn::ShiftRightSame(v, shift), Bits(mask));
}

// `add` where bit `bit` of the bytes of h is set, else 0.
HWY_INLINE hn::Vec<DU8> IfBit(hn::Vec<DU8> h, uint8_t bit, uint8_t add) {
  return hn::IfThenElseZero(hn::TestBit(h, Bits(bit)), Bits(add));
}

// The signed quants of a block into q[256] and its per-16 scales into sc (see quant_blocks.h).
template <DType kType>
HWY_INLINE void UnpackQuants(const uint8_t* blk, uint8_t* q, int16_t* sc, Unpacked* u) {
  const DU8 d8;
  const size_t N8 = hn::Lanes(d8);
  if constexpr (kType == DType::Q5_K) {
    const uint8_t* s = blk + 4;
    for (int j = 0; j < 8; ++j) {
      const int scale = j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
      const int min = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      sc[2 * j] = sc[2 * j + 1] = static_cast<int16_t>(scale);
      u->mins[2 * j] = u->mins[2 * j + 1] = static_cast<int16_t>(min);
    }
    const uint8_t* qh = blk + 16;
    const uint8_t* qs = blk + 48;
    for (int c = 0; c < 4; ++c) {
      for (size_t half = 0; half < 32; half += N8) {
        const auto v = hn::LoadU(d8, qs + 32 * c + half);
        const auto h = hn::LoadU(d8, qh + half);
        hn::Store(hn::Or(hn::And(v, Bits(0xF)), IfBit(h, static_cast<uint8_t>(1 << (2 * c)), 16)), d8,
                  q + 64 * c + half);
        hn::Store(hn::Or(ShiftMask(v, 4, 0xF), IfBit(h, static_cast<uint8_t>(2 << (2 * c)), 16)), d8,
                  q + 64 * c + 32 + half);
      }
    }
    u->d = HalfAt(blk);
    u->dmin = HalfAt(blk + 2);
  } else if constexpr (kType == DType::Q3_K) {
    const uint8_t* hmask = blk;
    const uint8_t* qs = blk + 32;
    const uint8_t* s = blk + 96;
    for (int j = 0; j < 16; ++j) {
      sc[j] = static_cast<int16_t>(
          (((s[j % 8] >> (4 * (j / 8))) & 0xF) | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
      u->mins[j] = 0;
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        for (size_t half = 0; half < 32; half += N8) {
          const auto low = ShiftMask(hn::LoadU(d8, qs + 32 * h + half), 2 * k, 3);
          const auto high = IfBit(hn::LoadU(d8, hmask + half), static_cast<uint8_t>(1 << (4 * h + k)), 4);
          // (low | high) - 4 wraps to the int8 bytes of -4 .. 3.
          hn::Store(hn::Sub(hn::Or(low, high), Bits(4)), d8, q + 128 * h + 32 * k + half);
        }
      }
    }
    u->d = HalfAt(blk + 108);
    u->dmin = 0;
  } else if constexpr (kType == DType::Q2_K) {
    const uint8_t* qs = blk + 16;
    for (int j = 0; j < 16; ++j) {
      sc[j] = static_cast<int16_t>(blk[j] & 0xF);
      u->mins[j] = static_cast<int16_t>(blk[j] >> 4);
    }
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 4; ++k) {
        for (size_t half = 0; half < 32; half += N8) {
          hn::Store(ShiftMask(hn::LoadU(d8, qs + 32 * h + half), 2 * k, 3), d8, q + 128 * h + 32 * k + half);
        }
      }
    }
    u->d = HalfAt(blk + 80);
    u->dmin = HalfAt(blk + 82);
  } else {
    static_assert(kType == DType::IQ4_XS);
    const uint16_t scales_h = LoadU16(blk + 2);
    const uint8_t* scales_l = blk + 4;
    const uint8_t* qs = blk + 8;
    for (int j = 0; j < 8; ++j) {
      const int scale = ((scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((scales_h >> (2 * j)) & 3) << 4);
      sc[2 * j] = sc[2 * j + 1] = static_cast<int16_t>(scale - 32);
      u->mins[2 * j] = u->mins[2 * j + 1] = 0;
    }
#if HWY_TARGET == HWY_SCALAR
    (void)N8;
    for (int i = 0; i < kQK_K / 2; ++i) {
      q[32 * (i / 16) + i % 16] = static_cast<uint8_t>(kIQ4NLValues[qs[i] & 0xF]);
      q[32 * (i / 16) + i % 16 + 16] = static_cast<uint8_t>(kIQ4NLValues[qs[i] >> 4]);
    }
#else
    // 16 levels: one byte shuffle looks up a whole vector (N8 is 16 on every such target).
    const auto table = hn::LoadU(d8, reinterpret_cast<const uint8_t*>(kIQ4NLValues));
    for (int j = 0; j < 8; ++j) {
      const auto v = hn::LoadU(d8, qs + 16 * j);
      hn::Store(hn::TableLookupBytes(table, hn::And(v, Bits(0xF))), d8, q + 32 * j);
      hn::Store(hn::TableLookupBytes(table, ShiftMask(v, 4, 0xF)), d8, q + 32 * j + 16);
    }
#endif
    u->d = HalfAt(blk);
    u->dmin = 0;
  }
}

template <DType kType>
HWY_INLINE void Unpack(const uint8_t* blk, Unpacked* u) {
  const D16 d16;
  const hn::Rebind<int8_t, D16> d8;
  const size_t N = hn::Lanes(d16);
  alignas(64) uint8_t q[kQK_K];
  int16_t sc[16];
  UnpackQuants<kType>(blk, q, sc, u);
  for (size_t e = 0; e < kQK_K; e += N) {
    const auto qv = hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(q + e)));
    hn::Store(hn::Mul(qv, hn::Set(d16, sc[e / 16])), d16, u->w16 + e);
  }
}

template <DType kType>
constexpr int64_t BlockBytes() {
  if constexpr (kType == DType::Q5_K) return sizeof(BlockQ5_K);
  if constexpr (kType == DType::Q3_K) return sizeof(BlockQ3_K);
  if constexpr (kType == DType::Q2_K) return sizeof(BlockQ2_K);
  return sizeof(BlockIQ4_XS);
}

// One weight row x T tokens.
template <DType kType>
struct KQuantTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    constexpr bool kHasMins = kType == DType::Q5_K || kType == DType::Q2_K;
    const D16 d16;
    const hn::Rebind<int8_t, D16> d8;
    const DF32 df;
    const size_t N = hn::Lanes(d16);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    hn::Vec<DF32> acc[T];
    float min_acc[T];
    for (int t = 0; t < T; ++t) {
      acc[t] = hn::Zero(df);
      min_acc[t] = 0;
    }
    Unpacked u;
    for (int64_t b = 0; b < nb; ++b) {
      PrefetchNextTile(w + job.row_bytes, BlockBytes<kType>(), b);
      Unpack<kType>(w + b * BlockBytes<kType>(), &u);
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * nb + b;
        const int8_t* xq = a.qs + tb * kQK_K;
        auto s0 = hn::Zero(D32()), s1 = hn::Zero(D32());
        for (size_t e = 0; e < kQK_K; e += N) {
          s0 = hn::ReorderWidenMulAccumulate(D32(), hn::Load(d16, u.w16 + e), hn::PromoteTo(d16, hn::LoadU(d8, xq + e)),
                                             s0, s1);
        }
        const float dx = a.d[tb];
        acc[t] = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0, s1)), hn::Set(df, u.d * dx), acc[t]);
        if constexpr (kHasMins) {
          const int16_t* bsums = a.bsums + tb * 16;
          int32_t imin = 0;
          for (int g = 0; g < 16; ++g) imin += u.mins[g] * bsums[g];
          min_acc[t] -= (u.dmin * dx) * static_cast<float>(imin);
        }
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + min_acc[t];
  }
};

}  // namespace kquant

// Weight rows of every chunk taken from `rows`, for Q5_K, Q3_K, Q2_K and IQ4_XS.
void KQuantMatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::Q5_K:
      return ForEachChunk<1, 4>(job, rows, kquant::KQuantTile<DType::Q5_K>{job});
    case DType::Q3_K:
      return ForEachChunk<1, 4>(job, rows, kquant::KQuantTile<DType::Q3_K>{job});
    case DType::Q2_K:
      return ForEachChunk<1, 4>(job, rows, kquant::KQuantTile<DType::Q2_K>{job});
    case DType::IQ4_XS:
      return ForEachChunk<1, 4>(job, rows, kquant::KQuantTile<DType::IQ4_XS>{job});
    default:
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_ toggle
