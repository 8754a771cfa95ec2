// Q4_0, Q8_0 and Q4_K kernels on AVX-512 with VNNI (Highway's AVX3_DL target). One vpdpbusd
// multiplies 64 unsigned weight bytes by 64 signed activation bytes and adds each four
// products into one of 16 int32 lanes; the AVX2 path (matmul_avx2-inl.h) needs two vpmaddubsw,
// two vpmaddwd and a sign fix-up for the same 64 products.
//
// A vector holds two 32-element blocks b and b+1 in their natural order (lanes 0-7 block b,
// 8-15 block b+1). The weights enter as unsigned bytes: Q4_0's nibbles 0..15 as stored (the
// format's -8 still to apply), Q8_0's signed quants plus 128. Both shift a block's dot product
// by offset * sum(x), so each lane's sum starts from -offset * (its four x), a vector kept per
// token. Per weight row and token, a pair of blocks then costs one vpdpbusd, one conversion to
// float and a multiply-add by the two scales; each row's (or token's) part is done once per tile.
#include <cstdint>

#include "core/quant_blocks.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul_internal.h"

#if defined(LL_KERNELS_MATMUL_VNNI_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LL_KERNELS_MATMUL_VNNI_INL_H_
#undef LL_KERNELS_MATMUL_VNNI_INL_H_
#else
#define LL_KERNELS_MATMUL_VNNI_INL_H_
#endif

#include "hwy/highway.h"
#include "kernels/matmul_avx2-inl.h"  // Q4_K's scale decoding and sub-block sums
#include "kernels/matmul_tiles-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {

#undef LL_X86_VNNI
#if HWY_TARGET == HWY_AVX3_DL
#define LL_X86_VNNI 1
#else
#define LL_X86_VNNI 0
#endif

#if LL_X86_VNNI

// Highway 1.0.3 compiles AVX3_DL with "avxvnni" (the 256-bit VEX form) but not "avx512vnni",
// which its CPU check for the target requires all the same; every function here adds it. Such
// functions cannot be force-inlined into Highway's, hence no HWY_INLINE on the entry points.
#undef LL_VNNI_ATTR
#define LL_VNNI_ATTR __attribute__((target(HWY_TARGET_STR ",avx512vnni")))

// What one token brings to a pair of blocks b, b+1 (b+1 absent: zeros), in one record.
struct alignas(64) VnniActPair {
  int8_t x[64];             // x[b][0..31], x[b+1][0..31]
  int32_t neg_offset[16];   // per lane: -offset * (the sum of its four x)
  float d[16];              // d[b] in lanes 0-7, d[b+1] in 8-15
};
static_assert(sizeof(VnniActPair) == 192);

// The records of all n tokens, [n][ceil(blocks / 2)], per thread (cheap next to the weights).
LL_VNNI_ATTR const VnniActPair* VnniPairActs(const QuantizedActs& a, int64_t n, uint8_t offset) {
  thread_local hwy::AlignedFreeUniquePtr<VnniActPair[]> buffer;
  thread_local int64_t capacity = 0;
  const int64_t pairs = (a.blocks + 1) / 2;
  if (n * pairs > capacity) {
    buffer = hwy::AllocateAligned<VnniActPair>(static_cast<size_t>(n * pairs));
    capacity = n * pairs;
  }
  const __m512i k = _mm512_set1_epi8(static_cast<char>(offset));
  for (int64_t t = 0; t < n; ++t) {
    const int8_t* xq = a.qs + t * a.blocks * 32;
    const float* xd = a.d + t * a.blocks;
    for (int64_t p = 0; p < pairs; ++p) {
      VnniActPair& out = buffer[t * pairs + p];
      const bool second = 2 * p + 1 < a.blocks;
      const __m512i x = _mm512_maskz_loadu_epi8(second ? ~0ULL : 0xFFFFFFFFULL, xq + 64 * p);
      _mm512_store_si512(out.x, x);
      _mm512_store_si512(out.neg_offset, _mm512_sub_epi32(_mm512_setzero_si512(),
                                                          _mm512_dpbusd_epi32(_mm512_setzero_si512(), k, x)));
      const __m512 d0 = _mm512_set1_ps(xd[2 * p]);
      _mm512_store_ps(out.d, _mm512_insertf32x8(d0, _mm256_set1_ps(second ? xd[2 * p + 1] : 0.0f), 1));
    }
  }
  return buffer.get();
}

// Q4_0 blocks b, b+1 of a row as unsigned nibbles in the order of VnniActPair::x: the low
// nibbles are elements 0..15 of a block, the high ones 16..31.
struct Q4_0Vnni {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr uint8_t kOffset = 8;
  template <bool kSecond>
  static LL_VNNI_ATTR HWY_INLINE __m512i Quants(const uint8_t* blk) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i q1 =
        kSecond ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBlockBytes + 2)) : _mm_setzero_si128();
    const __m512i both = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1));
    // [q0 | q0 | q1 | q1], the second copy of each shifted down to its high nibbles.
    const __m512i spread = _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(1, 1, 0, 0));
    const __m512i shifted = _mm512_srlv_epi64(spread, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
    return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
  }
};

// Q8_0 blocks b, b+1 of a row, each quant plus 128 (an absent b+1 gives 128s, which meet
// zeros in x).
struct Q8_0Vnni {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr uint8_t kOffset = 128;
  template <bool kSecond>
  static LL_VNNI_ATTR HWY_INLINE __m512i Quants(const uint8_t* blk) {
    const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i q1 =
        kSecond ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kBlockBytes + 2)) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1), _mm512_set1_epi8(-128));
  }
};

// Tiles of R <= 4 weight rows x T tokens. Every (row, token) sums its blocks in the same order
// whatever the tile, so the result does not depend on how rows and tokens are tiled.
template <class Kernel>
struct VnniTile {
  const MatmulJob& job;
  const VnniActPair* acts;

  // The fp16 scales of blocks b, b+1 of every row: row r's in lanes 0-7 and 8-15 of d[r].
  template <int R, bool kSecond>
  static LL_VNNI_ATTR HWY_INLINE void Scales(const uint8_t* const* blk, __m512* d) {
    uint64_t h0 = 0, h1 = 0;
    for (int r = 0; r < R; ++r) {
      h0 |= static_cast<uint64_t>(LoadU16(blk[r])) << (16 * r);
      if constexpr (kSecond) h1 |= static_cast<uint64_t>(LoadU16(blk[r] + Kernel::kBlockBytes)) << (16 * r);
    }
    const __m128i halves = _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<int64_t>(h0)), static_cast<int64_t>(h1), 1);
    const __m512 all = _mm512_castps256_ps512(_mm256_cvtph_ps(halves));  // [rows of b | rows of b+1]
    for (int r = 0; r < R; ++r) {
      const __m512i pick = _mm512_inserti64x4(_mm512_set1_epi32(r), _mm256_set1_epi32(4 + r), 1);
      d[r] = _mm512_permutexvar_ps(pick, all);
    }
  }

  // Adds blocks b, b+1 (starting at byte `offset` of each row) of every (row, token).
  template <int R, int T, bool kSecond>
  static LL_VNNI_ATTR HWY_INLINE void Step(const uint8_t* const* w, int64_t offset, const VnniActPair* x,
                                           int64_t pairs, __m512 (*acc)[R]) {
    const uint8_t* blk[R];
    __m512i q[R];
    for (int r = 0; r < R; ++r) {
      blk[r] = w[r] + offset;
      q[r] = Kernel::template Quants<kSecond>(blk[r]);
    }
    __m512 dw[R];
    Scales<R, kSecond>(blk, dw);
    for (int t = 0; t < T; ++t) {
      const VnniActPair& xt = x[t * pairs];
      const __m512i xv = _mm512_load_si512(xt.x);
      const __m512i start = _mm512_load_si512(xt.neg_offset);
      const __m512 dx = _mm512_load_ps(xt.d);
      for (int r = 0; r < R; ++r) {
        const __m512i dot = _mm512_dpbusd_epi32(start, q[r], xv);
        acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw[r], dx), acc[t][r]);
      }
    }
  }

  template <int R, int T>
  LL_VNNI_ATTR void operator()(int64_t r0, int64_t t0) const {
    static_assert(R <= 4);
    const int64_t nb = job.acts.blocks;
    const int64_t pairs = (nb + 1) / 2;
    const uint8_t* w[R];
    for (int r = 0; r < R; ++r) w[r] = job.w + (r0 + r) * job.row_bytes;
    const VnniActPair* x = acts + t0 * pairs;
    __m512 acc[T][R];
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) acc[t][r] = _mm512_setzero_ps();
    const uint8_t* next_tile = w[0] + R * job.row_bytes;
    for (int64_t p = 0; p < nb / 2; ++p) {
      PrefetchNextTile(next_tile, R * 2 * Kernel::kBlockBytes, p);
      Step<R, T, true>(w, 2 * p * Kernel::kBlockBytes, x + p, pairs, acc);
    }
    if (nb % 2) Step<R, T, false>(w, (nb - 1) * Kernel::kBlockBytes, x + pairs - 1, pairs, acc);
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < R; ++r) job.y[(t0 + t) * job.rows + r0 + r] = _mm512_reduce_add_ps(acc[t][r]);
  }
};

// Q4_K weights x Q8_K activations, one row x T tokens. A 64-element chunk's 32 bytes hold
// sub-block 2c in their low nibbles and 2c+1 in their high ones, which one vector holds in the
// order of the activations' 64 bytes; vpdpbusd then gives sub-block 2c in lanes 0-7 and 2c+1
// in 8-15, and a multiply by the two sub-blocks' scales accumulates scale * dot in int32. Per
// block the sum is folded to 4 lanes and finished by AddQ4KBlock (matmul_avx2-inl.h).
struct Q4_KVnniTile {
  const MatmulJob& job;
  const int16_t* subsums;
  template <int R, int T>
  LL_VNNI_ATTR void operator()(int64_t r0, int64_t t0) const {
    static_assert(R == 1);
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w = job.w + r0 * job.row_bytes;
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i nibble_shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = w + b * sizeof(BlockQ4_K);
      PrefetchNextTile(w + job.row_bytes, sizeof(BlockQ4_K), b);
      const Q4KBlockHead head = ReadQ4KBlockHead(blk);
      const __m512i sc32 = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(head.scales)));
      const uint8_t* qs = blk + 16;
      __m512i isum[T];
      for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c)));
        const __m512i wq = _mm512_and_si512(_mm512_srlv_epi64(q, nibble_shift), m4);
        const __m512i pick = _mm512_inserti64x4(_mm512_set1_epi32(2 * c), _mm256_set1_epi32(2 * c + 1), 1);
        const __m512i sc = _mm512_permutexvar_epi32(pick, sc32);
        for (int t = 0; t < T; ++t) {
          const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 64 * c;
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, _mm512_load_si512(x));
          isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot, sc));
        }
      }
      for (int t = 0; t < T; ++t) {
        const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum[t]), _mm512_extracti64x4_epi64(isum[t], 1));
        const __m128i i4 = _mm_add_epi32(_mm256_castsi256_si128(i8), _mm256_extracti128_si256(i8, 1));
        acc[t] = AddQ4KBlock(head, i4, a, subsums, (t0 + t) * nb + b, acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) job.y[(t0 + t) * job.rows + r0] = HSum(acc[t]);
  }
};

template <class Kernel>
LL_VNNI_ATTR void VnniMatmulRowsOf(const MatmulJob& job, RowDispenser& rows) {
  const VnniTile<Kernel> tile{job, VnniPairActs(job.acts, job.n, Kernel::kOffset)};
  if (job.n == 1) return ForEachChunk<4, 1>(job, rows, tile);
  return ForEachChunk<4, 4>(job, rows, tile);
}

LL_VNNI_ATTR void Q4_KVnniRows(const MatmulJob& job, RowDispenser& rows) {
  const Q4_KVnniTile tile{job, SubBlockSums(job.acts, job.n)};
  if (job.n == 1) return ForEachChunk<1, 1>(job, rows, tile);
  return ForEachChunk<1, 4>(job, rows, tile);
}

// Q4_0, Q8_0 and Q4_K weights; the other types go to matmul_avx2-inl.h's kernels.
void VnniMatmulRows(const MatmulJob& job, RowDispenser& rows) {
  if (job.type == DType::Q4_0) return VnniMatmulRowsOf<Q4_0Vnni>(job, rows);
  if (job.type == DType::Q4_K) return Q4_KVnniRows(job, rows);
  return VnniMatmulRowsOf<Q8_0Vnni>(job, rows);
}

#endif  // LL_X86_VNNI

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_VNNI_INL_H_ toggle
