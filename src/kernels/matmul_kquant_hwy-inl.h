// Matmul kernels of Q5_K, Q3_K, Q2_K and IQ4_XS weights x Q8_K activations. The min terms
// of Q5_K and Q2_K come from the activations' bsums, as in the scalar twins of
// matmul_reference.cc.
//
// x86 with AVX2 and better (LL_X86_AVX2): intrinsics in the manner of matmul_avx2-inl.h
// (whose helpers they use), unsigned quants times signed activations with vpmaddubsw and
// the sub-block scales applied with vpmaddwd; Q3_K's -4 offset is taken out once per block
// through the bsums, IQ4_XS's levels come from one byte shuffle.
//
// Every other target: portable Highway. Per weight block the quants are unpacked once, with
// 16-byte vectors, into int16 values already multiplied by their sub-block scale
// (|q * scale| <= 127 * 32 fits); each token of the tile then needs one int16 dot product of
// 256 elements, one conversion and one multiply-add per block.
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
#include "kernels/matmul_avx2-inl.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace kquant {
namespace hn = hwy::HWY_NAMESPACE;

#if LL_X86_AVX2

// Per 32 elements k = 0..3 of a 128-element half whose 8 int16 scales of 16 elements sit in
// both 128-bit lanes of sc: scale 2k in the low lane, 2k + 1 in the high lane.
HWY_INLINE __m256i HalfScales(__m256i sc, int k) {
  const __m128i even = _mm_set1_epi16(static_cast<int16_t>(0x0100 * (4 * k + 1) + 4 * k));
  const __m128i odd = _mm_set1_epi16(static_cast<int16_t>(0x0100 * (4 * k + 3) + 4 * k + 2));
  return _mm256_shuffle_epi8(sc, _mm256_setr_m128i(even, odd));
}

// Q5_K: Q4_K's kernel (see Q4_KTile) with the fifth bit of every quant taken from qh.
struct Q5_KTile {
  const MatmulJob& job;
  const int16_t* subsums;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * sizeof(BlockQ5_K);
      PrefetchNextTile(w + job.row_bytes, sizeof(BlockQ5_K), b);
      const Q4KBlockHead head = ReadQ4KBlockHead(blk);
      __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
      const uint8_t* qs = blk + 48;
      __m256i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        // qh moves down 2 bits per chunk: bits 2c and 2c + 1 of each byte are then bits 0, 1.
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
        qh = _mm256_srli_epi16(qh, 2);
        const __m256i sl = Q4KScaleVector(head.scales, 2 * c);
        const __m256i sh = Q4KScaleVector(head.scales, 2 * c + 1);
        for (int t = 0; t < T; ++t) {
          const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 64 * c;
          const __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
          const __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(x + 32));
          const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl), sl);
          const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh), sh);
          isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(pl, ph));
        }
      }
      for (int t = 0; t < T; ++t) {
        const __m128i i4 = _mm_add_epi32(_mm256_castsi256_si128(isum[t]), _mm256_extracti128_si256(isum[t], 1));
        acc[t] = AddQ4KBlock(head, i4, a, subsums, (t0 + t) * nb + b, acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = HSum(acc[t]);
  }
};

// Q3_K and Q2_K: per 128-element half, the 2-bit fields of 32 bytes of qs for k = 0..3 (and
// for Q3_K the high bit from hmask) form 32 unsigned quants each; the 16 scales are int16.
template <DType kType>
struct Q2Q3_KTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    constexpr bool kQ3 = kType == DType::Q3_K;
    constexpr int64_t kBlockBytes = kQ3 ? sizeof(BlockQ3_K) : sizeof(BlockQ2_K);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * kBlockBytes;
      PrefetchNextTile(w + job.row_bytes, kBlockBytes, b);
      const uint8_t* qs = blk + (kQ3 ? 32 : 16);
      __m128i sc8;  // the 16 scales as bytes (signed for Q3_K)
      float d, dmin = 0;
      __m256i mins16 = _mm256_setzero_si256();
      if constexpr (kQ3) {
        // Low nibbles: scales 0-7 from the low, 8-15 from the high nibbles of bytes 0-7; the
        // 2-bit high parts of scales 4i .. 4i+3 are bits 2i, 2i+1 of bytes 8-11.
        const uint8_t* s = blk + 96;
        const __m128i low8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(low8, m4), _mm_and_si128(_mm_srli_epi16(low8, 4), m4));
        const uint32_t h = LoadU32(s + 8);
        const __m128i high = _mm_and_si128(_mm_setr_epi32(static_cast<int>(h), static_cast<int>(h >> 2),
                                                          static_cast<int>(h >> 4), static_cast<int>(h >> 6)),
                                           _mm_set1_epi8(3));
        sc8 = _mm_sub_epi8(_mm_or_si128(low, _mm_slli_epi16(high, 4)), _mm_set1_epi8(32));
        d = F16ToF32(blk + 108);
      } else {
        const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk));
        sc8 = _mm_and_si128(s, _mm_set1_epi8(0x0F));
        mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F)));
        d = F16ToF32(blk + 80);
        dmin = F16ToF32(blk + 82);
      }
      __m256i isum[T];
      __m256i imin[T];
      for (int t = 0; t < T; ++t) {
        const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums + ((t0 + t) * nb + b) * 16));
        if constexpr (kQ3) {
          // The quants are used as 0..7; q - 4 is applied as -4 * sum(scale * bsum).
          isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                     _mm256_slli_epi32(_mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(sc8)), 2));
          imin[t] = _mm256_setzero_si256();
        } else {
          isum[t] = _mm256_setzero_si256();
          imin[t] = _mm256_madd_epi16(bs, mins16);
        }
      }
      __m256i hm = kQ3 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk)) : _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m128i half = h ? _mm_srli_si128(sc8, 8) : sc8;
        const __m256i sc = _mm256_broadcastsi128_si256(kQ3 ? _mm_cvtepi8_epi16(half) : _mm_cvtepu8_epi16(half));
        __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
        for (int k = 0; k < 4; ++k) {
          __m256i u = _mm256_and_si256(q, m3);
          q = _mm256_srli_epi16(q, 2);
          if constexpr (kQ3) {
            // hmask moves down one bit per 32 elements: bit 4h + k of each byte is then bit 0.
            u = _mm256_or_si256(u, _mm256_slli_epi16(_mm256_and_si256(hm, one), 2));
            hm = _mm256_srli_epi16(hm, 1);
          }
          const __m256i s = HalfScales(sc, k);
          for (int t = 0; t < T; ++t) {
            const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 128 * h + 32 * k;
            const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), s));
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        const float dx = a.d[(t0 + t) * nb + b];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
        if constexpr (!kQ3) acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin[t]), _mm256_set1_ps(dmin * dx), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = HSum(acc[t]);
  }
};

// IQ4_XS: per sub-block of 32, the 16 bytes of qs as [low nibbles | high nibbles] index the
// level table in both lanes; the signed levels multiply the activations as Q8_0's weights do
// (|level| times x with the level's sign; |level| <= 127 keeps the pair sums in int16).
struct IQ4_XSTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIQ4NLValues)));
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * sizeof(BlockIQ4_XS);
      PrefetchNextTile(w + job.row_bytes, sizeof(BlockIQ4_XS), b);
      const uint16_t scales_h = LoadU16(blk + 2);
      const uint8_t* scales_l = blk + 4;
      const uint8_t* qs = blk + 8;
      __m256i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
      for (int j = 0; j < 8; ++j) {
        const int scale = (((scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((scales_h >> (2 * j)) & 3) << 4)) - 32;
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * j));
        const __m256i idx = _mm256_setr_m128i(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
        const __m256i q = _mm256_shuffle_epi8(table, idx);
        const __m256i aq = _mm256_abs_epi8(q);
        const __m256i s = _mm256_set1_epi16(static_cast<int16_t>(scale));
        for (int t = 0; t < T; ++t) {
          const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 32 * j;
          const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(xv, q)), s));
        }
      }
      const float d = F16ToF32(blk);
      for (int t = 0; t < T; ++t) {
        const float dx = a.d[(t0 + t) * nb + b];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = HSum(acc[t]);
  }
};

#else  // !LL_X86_AVX2

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

#endif  // LL_X86_AVX2

}  // namespace kquant

// Weight rows of every chunk taken from `rows`, for Q5_K, Q3_K, Q2_K and IQ4_XS.
void KQuantMatmulRows(const MatmulJob& job, RowDispenser& rows) {
#if LL_X86_AVX2
  switch (job.type) {
    case DType::Q5_K:
      return ForEachChunk<1, 4>(job, rows, kquant::Q5_KTile{job, SubBlockSums(job.acts, job.n)});
    case DType::Q3_K:
      return ForEachChunk<1, 4>(job, rows, kquant::Q2Q3_KTile<DType::Q3_K>{job});
    case DType::Q2_K:
      return ForEachChunk<1, 4>(job, rows, kquant::Q2Q3_KTile<DType::Q2_K>{job});
    case DType::IQ4_XS:
      return ForEachChunk<1, 4>(job, rows, kquant::IQ4_XSTile{job});
    default:
      return;
  }
#else
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
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_KQUANT_HWY_INL_H_ toggle
