// Integer matmul kernels of the other 32-element types (Q4_1, Q5_0, Q5_1, IQ4_NL): AVX2
// intrinsics on the x86 targets LL_X86_AVX2 selects (vpmaddubsw on the block's 32 quants as
// bytes, as matmul_avx2-inl.h does for Q4_0), portable Highway on every other target (the
// quants widened to int16). Either way the block's quants, with their offset or level applied,
// multiply the Q8_0 / Q8_1 activations into int32 lanes that the per-block scale multiplies;
// the Q8_1 block sums s multiply the weights' minimum.
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

// Where the fields of each 32-element block type are (see quant_blocks.h).
template <DType kType>
struct Q32Layout {
  static constexpr bool kMin = kType == DType::Q4_1 || kType == DType::Q5_1;
  static constexpr bool kHighBit = kType == DType::Q5_0 || kType == DType::Q5_1;
  static constexpr int64_t kQhOffset = kMin ? 4 : 2;
  static constexpr int64_t kQsOffset = kQhOffset + (kHighBit ? 4 : 0);
  static constexpr int64_t kBytes = kQsOffset + 16;
};

// The block's 32 quants, with the offset (Q5_0) or level (IQ4_NL) applied, as int16 vectors
// in element order (32 / lanes of them).
template <DType kType>
HWY_INLINE void WidenBlockQuants(const uint8_t* w, hn::Vec<D16>* wq) {
  using L = Q32Layout<kType>;
  const D16 d16;
  const size_t N = hn::Lanes(d16);
  const uint8_t* qs = w + L::kQsOffset;
  if constexpr (kType == DType::IQ4_NL) {
    // The nibbles index the 16 levels (a byte shuffle; one lane at a time on the scalar
    // target, whose vectors hold one byte).
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
    for (size_t k = 0; k < 32; k += N) wq[k / N] = WidenI8(levels + k);
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
      wq[k / N] = lo;
      wq[(16 + k) / N] = hi;
    }
  }
}

// One row x T tokens: each block's quants are widened once and multiply every token's.
template <DType kType>
struct Q32Tile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r, int64_t t0) const {
    static_assert(R == 1);
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
    hn::Vec<DF32> acc[T];
    float min_acc[T];  // the minimum's terms are one number per block
    for (int t = 0; t < T; ++t) {
      acc[t] = hn::Zero(df);
      min_acc[t] = 0;
    }
    for (int64_t b = 0; b < nb; ++b, w += L::kBytes) {
      hn::Vec<D16> wq[32 / hn::MaxLanes(D16())];
      WidenBlockQuants<kType>(w, wq);
      const float d = fp16_to_fp32(LoadU16(w));
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * nb + b;
        const int8_t* xq = a.qs + tb * 32;
        auto s0 = hn::Zero(D32()), s1 = hn::Zero(D32());
        for (size_t k = 0; k < 32; k += N) {
          s0 = hn::ReorderWidenMulAccumulate(D32(), wq[k / N], WidenI8(xq + k), s0, s1);
        }
        acc[t] = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0, s1)), hn::Set(df, d * a.d[tb]), acc[t]);
        if constexpr (L::kMin) min_acc[t] += fp16_to_fp32(LoadU16(w + 2)) * a.s[tb];
      }
    }
    for (int t = 0; t < T; ++t) {
      job.y[(t0 + t) * job.rows + r] = hn::GetLane(hn::SumOfLanes(df, acc[t])) + min_acc[t];
    }
  }
};

#if LL_X86_AVX2

// The 32 nibbles of a block as bytes in element order: the low nibbles (elements 0-15) in the
// low 128 bits, the high nibbles (16-31) in the high 128 bits.
HWY_INLINE __m256i Nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// 0xFF in byte j where bit j of `bits` is set, else 0: byte j takes byte j / 8 of `bits`, then
// all its bits but bit j % 8 are set, so it is all ones exactly when that bit was.
HWY_INLINE __m256i BitsToBytes(uint32_t bits) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
  const __m256i others = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(others, _mm256_set1_epi64x(-1));
}

// The block's 32 quants as bytes, with the offset (Q5_0) or level (IQ4_NL) applied: unsigned
// for the types with a minimum, signed for the others.
template <DType kType>
HWY_INLINE __m256i BlockQuants(const uint8_t* w) {
  using L = Q32Layout<kType>;
  const __m256i q = Nibbles(w + L::kQsOffset);
  if constexpr (kType == DType::Q4_1) {
    return q;
  } else if constexpr (kType == DType::IQ4_NL) {
    const __m128i levels = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues));
    return _mm256_shuffle_epi8(_mm256_set_m128i(levels, levels), q);
  } else {
    const __m256i high = BitsToBytes(LoadU32(w + L::kQhOffset));
    if constexpr (kType == DType::Q5_1) return _mm256_or_si256(q, _mm256_and_si256(high, _mm256_set1_epi8(0x10)));
    // q - 16 as int8: the high bit set leaves q's nibble; clear, the nibble minus 16 (0xF0 | q).
    return _mm256_or_si256(q, _mm256_andnot_si256(high, _mm256_set1_epi8(static_cast<char>(0xF0))));
  }
}

// One row x T tokens. vpmaddubsw needs an unsigned operand: signed quants give their
// magnitude (once per block) and each token's activations their sign.
template <DType kType>
struct Avx2Q32Tile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r, int64_t t0) const {
    static_assert(R == 1);
    using L = Q32Layout<kType>;
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r * job.row_bytes;
    // A single token gets two accumulators, for even and odd blocks, to halve its chain of
    // dependent multiply-adds; several tokens are independent chains already.
    constexpr int kChains = T == 1 ? 2 : 1;
    __m256 acc[T][kChains];
    float mins[T][kChains];  // the minimum's terms are one number per block
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < kChains; ++c) {
        acc[t][c] = _mm256_setzero_ps();
        mins[t][c] = 0;
      }
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * L::kBytes;
      const __m256i q = BlockQuants<kType>(blk);
      const __m256i qu = L::kMin ? q : _mm256_sign_epi8(q, q);
      const float d = F16ToF32(blk);
      [[maybe_unused]] const float m = L::kMin ? F16ToF32(blk + 2) : 0.0f;
      for (int t = 0; t < T; ++t) {
        const int64_t tb = (t0 + t) * nb + b;
        __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.qs + 32 * tb));
        if constexpr (!L::kMin) x = _mm256_sign_epi8(x, q);
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(qu, x), ones));
        acc[t][b % kChains] = _mm256_fmadd_ps(dot, _mm256_set1_ps(d * a.d[tb]), acc[t][b % kChains]);
        if constexpr (L::kMin) mins[t][b % kChains] += m * a.s[tb];
      }
    }
    for (int t = 0; t < T; ++t) {
      __m256 all = acc[t][0];
      float min_sum = mins[t][0];
      if constexpr (kChains == 2) {
        all = _mm256_add_ps(all, acc[t][1]);
        min_sum += mins[t][1];
      }
      job.y[(t0 + t) * job.rows + r] = HSum(all) + min_sum;
    }
  }
};

template <DType kType>
using TileFor = Avx2Q32Tile<kType>;
#else
template <DType kType>
using TileFor = Q32Tile<kType>;
#endif  // LL_X86_AVX2

}  // namespace q32

// Decoding walks rows one token at a time; prompts take 4 tokens per weight block loaded.
template <class Tile>
void Q32Chunks(const MatmulJob& job, RowDispenser& rows, Tile&& tile) {
  if (job.n == 1) return ForEachChunk<1, 1>(job, rows, tile);
  ForEachChunk<1, 4>(job, rows, tile);
}

// Weight rows of every chunk taken from `rows`, for Q4_1, Q5_0, Q5_1 and IQ4_NL.
void Q32MatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::Q4_1:
      return Q32Chunks(job, rows, q32::TileFor<DType::Q4_1>{job});
    case DType::Q5_0:
      return Q32Chunks(job, rows, q32::TileFor<DType::Q5_0>{job});
    case DType::Q5_1:
      return Q32Chunks(job, rows, q32::TileFor<DType::Q5_1>{job});
    case DType::IQ4_NL:
      return Q32Chunks(job, rows, q32::TileFor<DType::IQ4_NL>{job});
    default:
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_Q32_HWY_INL_H_ toggle
