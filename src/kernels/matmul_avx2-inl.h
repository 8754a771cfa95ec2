// Integer matmul kernels in AVX2 intrinsics, for the x86 targets LL_X86_AVX2 selects (see
// matmul_tiles-inl.h): their dot products are built on vpmaddubsw / vpmaddwd, and Highway
// 1.0.3 has no saturating u8 x i8 pairwise multiply-add. Every other target compiles
// matmul_hwy-inl.h instead.
#include <algorithm>
#include <array>
#include <climits>

#include "core/quant_blocks.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul_internal.h"

#if defined(LL_KERNELS_MATMUL_AVX2_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_AVX2_INL_H_
#undef LL_KERNELS_MATMUL_AVX2_INL_H_
#else
#define LL_KERNELS_MATMUL_AVX2_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if LL_X86_AVX2

HWY_INLINE float F16ToF32(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Stores the horizontal sums of R accumulators to y[0 .. R).
template <int R>
HWY_INLINE void StoreSums(const __m256* acc, float* y) {
  if constexpr (R == 4) {
    const __m256 s01 = _mm256_hadd_ps(acc[0], acc[1]);
    const __m256 s23 = _mm256_hadd_ps(acc[2], acc[3]);
    const __m256 s = _mm256_hadd_ps(s01, s23);
    _mm_storeu_ps(y, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  } else {
    for (int r = 0; r < R; ++r) y[r] = HSum(acc[r]);
  }
}

// Q4_0 and Q8_0 kernels work on pairs of blocks: one 256-bit vector holds half of each
// block in each 128-bit lane, so the per-block work after the multiply-adds (int to float,
// scale, accumulate) is shared by two blocks. The activations are first rearranged into
// that pairing (per thread; cheap next to the weights), with everything a pair needs in one
// 128-byte record:
struct PairedAct {
  int8_t lo[32];    // x[b][0..15], x[b+1][0..15]
  int8_t hi[32];    // x[b][16..31], x[b+1][16..31]
  int32_t bias[8];  // 8 * sum(x[b]) in lanes 0-3, 8 * sum(x[b+1]) in 4-7 (Q4_0's -8 offset)
  float d[8];       // d[b] in lanes 0-3, d[b+1] in 4-7
};
static_assert(sizeof(PairedAct) == 128);

// Pairs of all tokens: [n][ceil(blocks / 2)]. An odd last block pairs with zeros.
const PairedAct* PairActs(const QuantizedActs& a, int64_t n) {
  thread_local hwy::AlignedFreeUniquePtr<PairedAct[]> buffer;
  thread_local int64_t capacity = 0;
  const int64_t pairs = (a.blocks + 1) / 2;
  if (n * pairs > capacity) {
    buffer = hwy::AllocateAligned<PairedAct>(static_cast<size_t>(n * pairs));
    capacity = n * pairs;
  }
  const __m256i spread = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  for (int64_t t = 0; t < n; ++t) {
    const int8_t* xq = a.qs + t * a.blocks * 32;
    const float* xd = a.d + t * a.blocks;
    for (int64_t p = 0; p < pairs; ++p) {
      PairedAct& out = buffer[t * pairs + p];
      const bool second = 2 * p + 1 < a.blocks;
      const __m256i x0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * p));
      const __m256i x1 = second ? _mm256_load_si256(reinterpret_cast<const __m256i*>(xq + 64 * p + 32))
                                : _mm256_setzero_si256();
      const __m256i lo = _mm256_permute2x128_si256(x0, x1, 0x20);
      const __m256i hi = _mm256_permute2x128_si256(x0, x1, 0x31);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.lo), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.hi), hi);
      const __m256i eight = _mm256_set1_epi8(8);
      const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(eight, lo), _mm256_maddubs_epi16(eight, hi));
      __m256i sum = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));      // 4 partial sums per block
      sum = _mm256_add_epi32(sum, _mm256_shuffle_epi32(sum, 0xB1));      // every lane: its block's total
      sum = _mm256_add_epi32(sum, _mm256_shuffle_epi32(sum, 0x4E));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out.bias), sum);
      const float d1 = second ? xd[2 * p + 1] : 0.0f;
      const __m256 d2 = _mm256_castps128_ps256(_mm_setr_ps(xd[2 * p], d1, 0.0f, 0.0f));
      _mm256_store_ps(out.d, _mm256_permutevar8x32_ps(d2, spread));
    }
  }
  return buffer.get();
}

// The fp16 scales of blocks b and b+1 (b+1 absent: 0), block b's in lanes 0-3.
template <bool kSecond>
HWY_INLINE __m256 LoadPairScales(const uint8_t* d0, const uint8_t* d1) {
  uint32_t halves = LoadU16(d0);
  if constexpr (kSecond) halves |= static_cast<uint32_t>(LoadU16(d1)) << 16;
  const __m256 d2 = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(halves))));
  return _mm256_permutevar8x32_ps(d2, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
}

// Two 16-byte halves (the second absent: zeros) as one vector.
template <bool kSecond>
HWY_INLINE __m256i LoadHalves(const uint8_t* p0, const uint8_t* p1) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p0));
  if constexpr (kSecond) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1)),
                                   1);
  } else {
    return _mm256_zextsi128_si256(lo);
  }
}

// Q4_0, four rows at a time: per row and block pair, maddubs(q, x) gives the unsigned dot
// products in 8 int32 lanes; two rounds of saturating packs + pairwise adds fold the four
// rows into one vector [row 0..3 of block b | row 0..3 of block b+1] (every partial sum of
// at most 16 products of 15 * 127 fits in int16, so nothing saturates). The -8 offset,
// the int to float conversion and the scaling then run once for 4 rows, and each token
// needs a single accumulator.
struct Q4_0QuadTile {
  const MatmulJob& job;
  const PairedAct* acts;

  // Nibbles 0..15 of rows w[0..3], blocks b and b+1 (absent: zeros), in PairedAct's pairing.
  template <bool kSecond>
  static HWY_INLINE void LoadWeights(const uint8_t* const* w, int64_t offset, __m256i* lo, __m256i* hi, __m256* d) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    uint64_t h0 = 0, h1 = 0;  // fp16 scales: rows 0..3 of block b, then of block b+1
    for (int r = 0; r < 4; ++r) {
      const uint8_t* blk = w[r] + offset;
      const __m256i q = LoadHalves<kSecond>(blk + 2, blk + 20);
      lo[r] = _mm256_and_si256(q, m4);
      hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      h0 |= static_cast<uint64_t>(LoadU16(blk)) << (16 * r);
      if constexpr (kSecond) h1 |= static_cast<uint64_t>(LoadU16(blk + 18)) << (16 * r);
    }
    const __m128i halves = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<int64_t>(h0)), static_cast<int64_t>(h1), 1);
    *d = _mm256_cvtph_ps(halves);
  }

  static HWY_INLINE __m256 Dot(const __m256i* lo, const __m256i* hi, __m256 dw, const PairedAct& x, __m256 acc) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i xlo = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.lo));
    const __m256i xhi = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.hi));
    __m256i i[4];
    for (int r = 0; r < 4; ++r) {
      i[r] = _mm256_madd_epi16(
          _mm256_add_epi16(_mm256_maddubs_epi16(lo[r], xlo), _mm256_maddubs_epi16(hi[r], xhi)), ones);
    }
    const __m256i i01 = _mm256_madd_epi16(_mm256_packs_epi32(i[0], i[1]), ones);
    const __m256i i23 = _mm256_madd_epi16(_mm256_packs_epi32(i[2], i[3]), ones);
    const __m256i all = _mm256_madd_epi16(_mm256_packs_epi32(i01, i23), ones);
    const __m256i dot = _mm256_sub_epi32(all, _mm256_load_si256(reinterpret_cast<const __m256i*>(x.bias)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, _mm256_load_ps(x.d)), acc);
  }

  // R <= 4 rows: the missing ones repeat the last row and are not stored.
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    const int64_t nb = job.acts.blocks;
    const int64_t pairs = (nb + 1) / 2;
    const uint8_t* w[4];
    for (int r = 0; r < 4; ++r) w[r] = job.w + (r0 + std::min(r, R - 1)) * job.row_bytes;
    const PairedAct* x = acts + t0 * pairs;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const uint8_t* next_tile = w[0] + 4 * job.row_bytes;
    __m256i lo[4], hi[4];
    __m256 dw;
    for (int64_t p = 0; p < nb / 2; ++p) {
      PrefetchNextTile(next_tile, 4 * 2 * sizeof(BlockQ4_0), p);
      LoadWeights<true>(w, 2 * p * sizeof(BlockQ4_0), lo, hi, &dw);
      for (int t = 0; t < T; ++t) acc[t] = Dot(lo, hi, dw, x[t * pairs + p], acc[t]);
    }
    if (nb % 2) {
      LoadWeights<false>(w, (nb - 1) * sizeof(BlockQ4_0), lo, hi, &dw);
      for (int t = 0; t < T; ++t) acc[t] = Dot(lo, hi, dw, x[t * pairs + pairs - 1], acc[t]);
    }
    for (int t = 0; t < T; ++t) {
      alignas(16) float sums[4];
      _mm_store_ps(sums, _mm_add_ps(_mm256_castps256_ps128(acc[t]), _mm256_extractf128_ps(acc[t], 1)));
      for (int r = 0; r < R; ++r) job.y[(t0 + t) * job.rows + r0 + r] = sums[r];
    }
  }
};

// Q8_0: maddubs needs an unsigned operand, so |w| multiplies x carrying the sign of w
// (|w| <= 128, |x| <= 127: pair sums fit in int16).
struct Q8_0Pair {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ8_0);
  struct Weights {
    __m256i lo, hi;  // signed quants in the pairing of PairedAct
    __m256 d;
  };
  template <bool kSecond>
  static HWY_INLINE Weights Load(const uint8_t* blk) {
    return {LoadHalves<kSecond>(blk + 2, blk + 36), LoadHalves<kSecond>(blk + 18, blk + 52),
            LoadPairScales<kSecond>(blk, blk + 34)};
  }
  static HWY_INLINE __m256i Products(__m256i w, const int8_t* x) {
    const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xv, w)), _mm256_set1_epi16(1));
  }
  static HWY_INLINE __m256 Dot(const Weights& w, const PairedAct& x, __m256 acc) {
    const __m256i i = _mm256_add_epi32(Products(w.lo, x.lo), Products(w.hi, x.hi));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(w.d, _mm256_load_ps(x.d)), acc);
  }
};

template <class Kernel>
struct PairTile {
  const MatmulJob& job;
  const PairedAct* acts;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    const int64_t nb = job.acts.blocks;
    const int64_t pairs = (nb + 1) / 2;
    const uint8_t* w[R];
    for (int r = 0; r < R; ++r) w[r] = job.w + (r0 + r) * job.row_bytes;
    const PairedAct* x = acts + t0 * pairs;
    __m256 acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) acc[t][r] = _mm256_setzero_ps();
    const uint8_t* next_tile = w[0] + R * job.row_bytes;
    for (int64_t p = 0; p < nb / 2; ++p) {
      PrefetchNextTile(next_tile, R * 2 * Kernel::kBlockBytes, p);
      typename Kernel::Weights wp[R];
      for (int r = 0; r < R; ++r) wp[r] = Kernel::template Load<true>(w[r] + 2 * p * Kernel::kBlockBytes);
      for (int t = 0; t < T; ++t)
        for (int r = 0; r < R; ++r) acc[t][r] = Kernel::Dot(wp[r], x[t * pairs + p], acc[t][r]);
    }
    if (nb % 2) {
      for (int r = 0; r < R; ++r) {
        const auto wp = Kernel::template Load<false>(w[r] + (nb - 1) * Kernel::kBlockBytes);
        for (int t = 0; t < T; ++t) acc[t][r] = Kernel::Dot(wp, x[t * pairs + pairs - 1], acc[t][r]);
      }
    }
    for (int t = 0; t < T; ++t) StoreSums<R>(acc[t], job.y + (t0 + t) * job.rows + r0);
  }
};

// The 8 6-bit scales and mins of a Q4_K block as bytes (see BlockQ4_K).
HWY_INLINE void DecodeQ4KScales(const uint8_t* s, uint64_t* scales, uint64_t* mins) {
  const uint32_t a = LoadU32(s), b = LoadU32(s + 4), c = LoadU32(s + 8);
  const uint32_t sc_hi = (c & 0x0f0f0f0f) | (((a >> 6) & 0x03030303) << 4);
  const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0f) | (((b >> 6) & 0x03030303) << 4);
  *scales = (a & 0x3f3f3f3f) | (static_cast<uint64_t>(sc_hi) << 32);
  *mins = (b & 0x3f3f3f3f) | (static_cast<uint64_t>(mn_hi) << 32);
}

// Sums of x over each 32-element sub-block of every Q8_K block, [n][blocks][8] (per thread),
// for the mins term of Q4_K.
const int16_t* SubBlockSums(const QuantizedActs& a, int64_t n) {
  thread_local hwy::AlignedFreeUniquePtr<int16_t[]> buffer;
  thread_local int64_t capacity = 0;
  if (n * a.blocks * 8 > capacity) {
    buffer = hwy::AllocateAligned<int16_t>(static_cast<size_t>(n * a.blocks * 8));
    capacity = n * a.blocks * 8;
  }
  for (int64_t i = 0; i < n * a.blocks; ++i) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 16 * i));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.bsums + 16 * i + 8));
    _mm_store_si128(reinterpret_cast<__m128i*>(buffer.get() + 8 * i), _mm_hadd_epi16(lo, hi));
  }
  return buffer.get();
}

// A Q4_K (or Q5_K) block's float scales [d x 4 | -dmin x 4], its 8 sub-block scales as bytes
// and its 8 mins as int16.
struct Q4KBlockHead {
  __m256 dmv;
  uint64_t scales;
  __m128i mins;
};

HWY_INLINE Q4KBlockHead ReadQ4KBlockHead(const uint8_t* blk) {
  // d and dmin are adjacent halves: [d, dmin] -> [d x 4 | -dmin x 4].
  const __m256 negate_mins = _mm256_castsi256_ps(_mm256_setr_epi32(0, 0, 0, 0, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN));
  const __m256 dd = _mm256_castps128_ps256(_mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU32(blk)))));
  Q4KBlockHead head;
  head.dmv = _mm256_xor_ps(_mm256_permutevar8x32_ps(dd, _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1)), negate_mins);
  uint64_t mins;
  DecodeQ4KScales(blk + 4, &head.scales, &mins);
  head.mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mins)));
  return head;
}

// Every 6-bit scale s as 16 int16 lanes of s.
struct alignas(32) SixBitScaleVector {
  int16_t lanes[16];
};
inline constexpr auto kSixBitScaleVectors = [] {
  std::array<SixBitScaleVector, 64> table{};
  for (int s = 0; s < 64; ++s)
    for (int16_t& lane : table[s].lanes) lane = static_cast<int16_t>(s);
  return table;
}();

// Sub-block j's scale in all 16 int16 lanes, for vpmaddwd: a load from the table of the 64
// possible vectors (2 KiB, it stays in L1) rather than a byte shuffle. These kernels are bound
// by their count of vector instructions; the 8 shuffles per block took about a sixth of the time.
HWY_INLINE __m256i Q4KScaleVector(uint64_t scales, int j) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kSixBitScaleVectors[(scales >> (8 * j)) & 0x3F].lanes));
}

// acc + one block's share for token block tb: its scale * dot sums (4 int32 lanes) and its mins
// term (from the sub-block sums of x) share one conversion and one multiply-add with d_x.
HWY_INLINE __m256 AddQ4KBlock(const Q4KBlockHead& head, __m128i scaled_dots, const QuantizedActs& a,
                              const int16_t* subsums, int64_t tb, __m256 acc) {
  const __m128i sums = _mm_load_si128(reinterpret_cast<const __m128i*>(subsums + 8 * tb));
  const __m128i imin = _mm_madd_epi16(sums, head.mins);  // sum of min_j * sum(x in sub-block j)
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(scaled_dots), imin, 1);
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(both), _mm256_mul_ps(head.dmv, _mm256_broadcast_ss(a.d + tb)), acc);
}

// Q4_K weights x Q8_K activations, one row x T tokens: per 64-element chunk the low and high
// nibbles are two sub-blocks; maddubs then vpmaddwd by the sub-block scale accumulates
// scale * dot in int32, which AddQ4KBlock finishes per block (folded to 4 lanes).
struct Q4_KTile {
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
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * sizeof(BlockQ4_K);
      PrefetchNextTile(w + job.row_bytes, sizeof(BlockQ4_K), b);
      const Q4KBlockHead head = ReadQ4KBlockHead(blk);
      const uint8_t* qs = blk + 16;
      __m256i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        const __m256i lo = _mm256_and_si256(q, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
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

// Q6_K weights x Q8_K activations, one row x T tokens. The 6-bit quants are used unsigned
// (0..63) and the -32 offset is applied once per block as 32 * sum(scale * bsum).
struct Q6_KTile {
  const MatmulJob& job;
  template <int R, int T>
  HWY_INLINE void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i m2 = _mm256_set1_epi8(0x03);
    const __m256i m2_2 = _mm256_set1_epi8(0x0C);
    const __m256i m2_4 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * sizeof(BlockQ6_K);
      PrefetchNextTile(w + job.row_bytes, sizeof(BlockQ6_K), b);
      const uint8_t* ql = blk;
      const uint8_t* qh = blk + 128;
      const uint8_t* scales = blk + 192;
      const float d = F16ToF32(blk + 208);
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
      __m256i isum[T];
      for (int t = 0; t < T; ++t) {
        const int16_t* bs = a.bsums + ((t0 + t) * nb + b) * 16;
        const __m256i corr = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)), sc16);
        isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
      }
      for (int h = 0; h < 2; ++h) {
        // Scales of this half (groups 8h .. 8h+7) in both 128-bit lanes.
        const __m256i sc = _mm256_broadcastsi128_si256(
            _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + 8 * h))));
        const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h));
        const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh + 32 * h));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2_2), 2));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(hb, m2_4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                               _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2_4));
        for (int k = 0; k < 4; ++k) {
          // Elements 32k .. 32k+31 of this half: groups 2k (low 128 bits) and 2k+1 (high).
          const __m256i s = _mm256_shuffle_epi8(
              sc, _mm256_setr_epi8(4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k,
                                   4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k, 4 * k + 1, 4 * k + 2,
                                   4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3,
                                   4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2, 4 * k + 3, 4 * k + 2,
                                   4 * k + 3));
          for (int t = 0; t < T; ++t) {
            const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 128 * h + 32 * k;
            const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(x));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv), s));
          }
        }
      }
      for (int t = 0; t < T; ++t) {
        const float dx = a.d[(t0 + t) * nb + b];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = HSum(acc[t]);
  }
};

// Weight rows of every chunk taken from `rows`, for the integer weight types.
void QuantizedMatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::Q4_0: {
      const PairedAct* acts = PairActs(job.acts, job.n);
      if (job.n == 1) return ForEachChunk<4, 1>(job, rows, Q4_0QuadTile{job, acts});
      return ForEachChunk<4, 4>(job, rows, Q4_0QuadTile{job, acts});
    }
    case DType::Q8_0: {
      const PairedAct* acts = PairActs(job.acts, job.n);
      if (job.n == 1) return ForEachChunk<4, 1>(job, rows, PairTile<Q8_0Pair>{job, acts});
      // Two rows share each token's paired activations and four tokens each row's weights.
      return ForEachChunk<2, 4>(job, rows, PairTile<Q8_0Pair>{job, acts});
    }
    case DType::Q4_K:
      return ForEachChunk<1, 4>(job, rows, Q4_KTile{job, SubBlockSums(job.acts, job.n)});
    case DType::Q6_K:
      return ForEachChunk<1, 4>(job, rows, Q6_KTile{job});
    default:
      return;
  }
}

#endif  // LL_X86_AVX2

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_AVX2_INL_H_ toggle
