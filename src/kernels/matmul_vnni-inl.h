// Q4_0, Q8_0 and Q4_K kernels on AVX-512 with VNNI (Highway's AVX3_DL target). One vpdpbusd
// multiplies 64 unsigned weight bytes by 64 signed activation bytes and adds each four
// products into one of 16 int32 lanes; the AVX2 path (matmul_avx2-inl.h) needs two vpmaddubsw,
// two vpmaddwd and a sign fix-up for the same 64 products.
//
// Every kernel here puts 16 weight rows in the 16 lanes of a vector: per block the rows' bytes
// are transposed (TransposeRowLanes), so that a lane's vpdpbusd sums stay within its row and a
// block's dot product of 16 rows needs no horizontal sum. The weights enter as unsigned bytes:
// Q4_0's and Q4_K's nibbles as stored, Q8_0's signed quants plus 128; a bias b of the quants
// shifts a block's dot product by b * sum(x), so each sum starts from -b * (its x).
//
// The transposes cost about as much as the products when one token is decoded: weights read
// into memory (--no-mmap) are therefore transposed once at load (pack_row_lanes,
// row_lane_pack.cc), and the tiles read such 16-row groups (MatmulJob::layout) with plain loads.
#include <algorithm>
#include <cstdint>
#include <utility>

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

// For tiles with 16 weight rows in the 16 lanes of a vector (Block32RowLanes, Q4_KRowLanes):
// bytes [offset, offset + 16) of the 16 rows w[0..15], transposed so that dword j of q[m] is
// dword m of row j (four rows per 128-bit lane, a 4 x 4 transpose of dwords in each).
LL_VNNI_ATTR HWY_INLINE void TransposeRowLanes(const uint8_t* const* w, int64_t offset, __m512i* q) {
  __m512i z[4];
  for (int i = 0; i < 4; ++i) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[i] + offset)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[4 + i] + offset)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[8 + i] + offset)), 2);
    z[i] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[12 + i] + offset)), 3);
  }
  // Lane L of z[i] is row 4L + i.
  const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
  q[0] = _mm512_unpacklo_epi64(t0, t2);
  q[1] = _mm512_unpackhi_epi64(t0, t2);
  q[2] = _mm512_unpacklo_epi64(t1, t3);
  q[3] = _mm512_unpackhi_epi64(t1, t3);
}

// The 16 rows' pointers of a row-lane tile; rows past `valid` repeat row r0 (computed, not stored).
LL_VNNI_ATTR HWY_INLINE void RowLanePointers(const MatmulJob& job, int64_t r0, int valid, const uint8_t** w) {
  for (int j = 0; j < 16; ++j) w[j] = job.w + (r0 + (j < valid ? j : 0)) * job.row_bytes;
}

// Four activation bytes broadcast to every lane (vpdpbusd's signed operand).
LL_VNNI_ATTR HWY_INLINE __m512i Broadcast4(const int8_t* x) {
  return _mm512_set1_epi32(static_cast<int32_t>(LoadU32(reinterpret_cast<const uint8_t*>(x))));
}

// Q4_0 or Q8_0 weights x Q8_0 activations, 16 weight rows in the 16 lanes of a vector, so that
// a block's integer dot product needs no horizontal sum. Format::Quants gives the block's 32
// quants of every row as unsigned bytes in eight vectors, u[k] holding elements 4k..4k+3 of
// each row; eight vpdpbusd against four broadcast activation bytes each then give the 16 rows'
// block sums for a token, started from -offset * (the token's block sum) for the bias of the
// unsigned quants, and one conversion and multiply-add by the scales finishes the block. The
// quants are unpacked once per block for T tokens. A (row, token) adds its blocks' float terms
// one by one in order, so neither the tiling nor the thread count changes a bit.
struct Q4_0RowLaneFormat {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr int kOffset = 8;  // the format's -8
  // The low nibbles of the 16 quant bytes are elements 0..15, the high ones 16..31.
  static LL_VNNI_ATTR HWY_INLINE void Quants(const uint8_t* const* w, int64_t offset, __m512i* u) {
    TransposeRowLanes(w, offset + 2, u);
    Nibbles(u);
  }
  // The same from the vectors pack_row_lanes laid out at p.
  static LL_VNNI_ATTR HWY_INLINE void PackedQuants(const uint8_t* p, __m512i* u) {
    for (int k = 0; k < 4; ++k) u[k] = _mm512_loadu_si512(p + 64 * k);
    Nibbles(u);
  }
  static LL_VNNI_ATTR HWY_INLINE void Nibbles(__m512i* u) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      u[4 + k] = _mm512_and_si512(_mm512_srli_epi16(u[k], 4), m4);
      u[k] = _mm512_and_si512(u[k], m4);
    }
  }
};

struct Q8_0RowLaneFormat {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr int kOffset = 128;  // signed quants plus 128
  static LL_VNNI_ATTR HWY_INLINE void Quants(const uint8_t* const* w, int64_t offset, __m512i* u) {
    TransposeRowLanes(w, offset + 2, u);
    TransposeRowLanes(w, offset + 18, u + 4);
    for (int k = 0; k < 8; ++k) u[k] = _mm512_xor_si512(u[k], _mm512_set1_epi8(-128));
  }
  static LL_VNNI_ATTR HWY_INLINE void PackedQuants(const uint8_t* p, __m512i* u) {
    for (int k = 0; k < 8; ++k) u[k] = _mm512_loadu_si512(p + 64 * k);  // packed plus 128
  }
};

template <class Format>
struct Block32RowLanes {
  static constexpr int kRows = kRowLaneRows;
  const MatmulJob& job;
  const int32_t* neg_offset;  // [n][blocks]: -offset * the sum of the block's 32 activations

  static LL_VNNI_ATTR const int32_t* NegOffsets(const QuantizedActs& a, int64_t n) {
    thread_local hwy::AlignedFreeUniquePtr<int32_t[]> buffer;
    thread_local int64_t capacity = 0;
    if (n * a.blocks > capacity) {
      buffer = hwy::AllocateAligned<int32_t>(static_cast<size_t>(n * a.blocks));
      capacity = n * a.blocks;
    }
    for (int64_t i = 0; i < n * a.blocks; ++i) {
      // The bytes plus 128 as unsigned, summed in four groups of eight: sum(x) + 32 * 128.
      const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.qs + 32 * i));
      const __m256i groups = _mm256_sad_epu8(_mm256_xor_si256(x, _mm256_set1_epi8(-128)), _mm256_setzero_si256());
      const __m128i two = _mm_add_epi64(_mm256_castsi256_si128(groups), _mm256_extracti128_si256(groups, 1));
      const int64_t sum = _mm_cvtsi128_si64(two) + _mm_extract_epi64(two, 1) - 32 * 128;
      buffer[i] = static_cast<int32_t>(-Format::kOffset * sum);
    }
    return buffer.get();
  }

  // Rows [r0, r0 + valid) x tokens [t0, t0 + T); rows past `valid` repeat row r0 and are not
  // stored. The 16 rows at `ahead` are prefetched meanwhile. Packed weights (pack_row_lanes)
  // keep a last group of fewer than 16 rows as in the file.
  template <int T>
  LL_VNNI_ATTR void operator()(int64_t r0, int valid, int64_t t0, const uint8_t* ahead) const {
    if (job.layout == WeightLayout::kRowLanes && valid == kRows) return Blocks<T, true>(r0, valid, t0, ahead);
    Blocks<T, false>(r0, valid, t0, ahead);
  }

  template <int T, bool kPacked>
  LL_VNNI_ATTR void Blocks(int64_t r0, int valid, int64_t t0, const uint8_t* ahead) const {
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w[kRows];
    RowLanePointers(job, r0, valid, w);
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t offset = b * Format::kBlockBytes;
      PrefetchNextTile(ahead, kRows * Format::kBlockBytes, b);
      __m512i u[8];
      __m512 dw;
      if constexpr (kPacked) {
        const uint8_t* p = w[0] + kRows * offset;  // the group's block b: 16 scales, then quants
        dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        Format::PackedQuants(p + 2 * kRows, u);
      } else {
        Format::Quants(w, offset, u);
        alignas(32) uint16_t scales[kRows];
        for (int j = 0; j < kRows; ++j) scales[j] = LoadU16(w[j] + offset);
        dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales)));
      }
      for (int t = 0; t < T; ++t) {
        const int64_t i = (t0 + t) * nb + b;
        const int8_t* x = a.qs + 32 * i;
        __m512i dot = _mm512_set1_epi32(neg_offset[i]);
        for (int k = 0; k < 8; ++k) dot = _mm512_dpbusd_epi32(dot, u[k], Broadcast4(x + 4 * k));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw, _mm512_set1_ps(a.d[i])), acc[t]);
      }
    }
    const __mmask16 keep = static_cast<__mmask16>((1u << valid) - 1);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(job.y + (t0 + t) * job.rows + r0, keep, acc[t]);
  }
};

template <class Format>
LL_VNNI_ATTR Block32RowLanes<Format> Block32Tile(const MatmulJob& job) {
  return {job, Block32RowLanes<Format>::NegOffsets(job.acts, job.n)};
}

// A row-lane tile over a chunk of rows: rows in L2-sized blocks, each walked by every tile of
// up to kTokens tokens, 16 rows at a time (the last tile of the chunk masked). Each tile
// prefetches the next one's rows; the chunk's last tile prefetches the first rows of the
// thread's next chunk (`following`, -1 if none) rather than rows another thread may be reading.
template <int kTokens, class Tile>
LL_VNNI_ATTR void RowLaneTiles(const Tile& tile, int64_t r0, int64_t r1, int64_t following) {
  const MatmulJob& job = tile.job;
  constexpr int kRows = kRowLaneRows;
  const int64_t row_block = L2RowBlock(job, r0, r1, kRows, kTokens);
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    for (int64_t t = 0; t < job.n; t += kTokens) {
      const int64_t tn = std::min<int64_t>(kTokens, job.n - t);
      for (int64_t r = rb; r < re; r += kRows) {
        const int valid = static_cast<int>(std::min<int64_t>(kRows, re - r));
        const int64_t next = r + kRows < r1 ? r + kRows : following;
        const uint8_t* ahead = job.w + (next >= 0 ? next : r) * job.row_bytes;
        [&]<int... k>(std::integer_sequence<int, k...>) {
          ((tn == k + 1 ? tile.template operator()<k + 1>(r, valid, t, ahead) : void()), ...);
        }(std::make_integer_sequence<int, kTokens>{});
      }
    }
  }
}

// The chunks this thread takes, each claimed while the one before it is computed so that its
// first rows are fetched ahead. A thread thus holds two chunks at once, which the dispenser's
// shares must allow for: with kSharesPerThread = 1 (matmul.cc) the first thread would hold
// three quarters of the rows. A prompt's tiles take 16 tokens: the 16 rows' unpacked quants
// then serve 16 tokens (2x the kernel's speed of 4 tokens, 1.15-1.3x that of 8).
template <class Tile>
LL_VNNI_ATTR void RowLaneRows(const Tile& tile, RowDispenser& rows) {
  int64_t r0, r1;
  if (!rows.next(&r0, &r1)) return;
  for (;;) {
    int64_t n0 = -1, n1 = -1;
    const bool more = rows.next(&n0, &n1);
    if (tile.job.n == 1) {
      RowLaneTiles<1>(tile, r0, r1, n0);
    } else {
      RowLaneTiles<16>(tile, r0, r1, n0);
    }
    if (!more) return;
    r0 = n0;
    r1 = n1;
  }
}

// Q4_K weights x Q8_K activations, 16 rows in the lanes as for Q4_0. A 64-element chunk's 32
// bytes hold sub-block 2c in their low nibbles and 2c+1 in their high ones; per token each
// sub-block's eight vpdpbusd give its exact sum, multiplied by the rows' 6-bit scales in int32.
// The block head (d, dmin and the 12 bytes of scales and mins) is transposed the same way and
// decoded in the lanes, and the mins meet the activations' sub-block sums in four vpdpwssd.
struct Q4_KRowLanes {
  static constexpr int kRows = kRowLaneRows;
  const MatmulJob& job;
  const int16_t* subsums;  // [n][blocks][8] (SubBlockSums)

  template <int T>
  LL_VNNI_ATTR void operator()(int64_t r0, int valid, int64_t t0, const uint8_t* ahead) const {
    if (job.layout == WeightLayout::kRowLanes && valid == kRows) return Blocks<T, true>(r0, valid, t0, ahead);
    Blocks<T, false>(r0, valid, t0, ahead);
  }

  // Vectors [first, first + count) of the block at `offset` (count a multiple of 4), vector m
  // holding dword m of each row: transposed here, or packed so (pack_row_lanes).
  template <bool kPacked>
  static LL_VNNI_ATTR HWY_INLINE void Vectors(const uint8_t* const* w, int64_t offset, int first, int count,
                                              __m512i* v) {
    if constexpr (kPacked) {
      for (int k = 0; k < count; ++k) v[k] = _mm512_loadu_si512(w[0] + kRows * offset + 64 * (first + k));
    } else {
      for (int k = 0; k < count; k += 4) TransposeRowLanes(w, offset + 4 * (first + k), v + k);
    }
  }

  template <int T, bool kPacked>
  LL_VNNI_ATTR void Blocks(int64_t r0, int valid, int64_t t0, const uint8_t* ahead) const {
    const QuantizedActs& a = job.acts;
    const int64_t nb = a.blocks;
    const uint8_t* w[kRows];
    RowLanePointers(job, r0, valid, w);
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i m6 = _mm512_set1_epi8(0x3F);
    const __m512i top2 = _mm512_set1_epi8(0x30);
    // vpshufb controls (indices within each 128-bit lane): byte k of each dword alone as an
    // int32, and bytes k and k+1 of each dword as two int16.
    const __m512i dword_start = _mm512_set4_epi32(12, 8, 4, 0);
    auto pick_byte = [&](int k) {
      return _mm512_add_epi32(dword_start, _mm512_set1_epi32(static_cast<int32_t>(0x80808000u | k)));
    };
    auto pick_pair = [&](int k) {
      return _mm512_add_epi32(_mm512_mullo_epi32(dword_start, _mm512_set1_epi32(0x10001)),
                              _mm512_set1_epi32(static_cast<int32_t>(0x80008000u | (k + 1) << 16 | k)));
    };
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t offset = b * static_cast<int64_t>(sizeof(BlockQ4_K));
      PrefetchNextTile(ahead, kRows * static_cast<int64_t>(sizeof(BlockQ4_K)), b);
      // head[0]: d | dmin << 16; head[1..3]: the 12 bytes of scales and mins (get_scale_min_k4).
      __m512i head[4];
      Vectors<kPacked>(w, offset, 0, 4, head);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head[0]));
      const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head[0], 16)));
      const __m512i scales_lo = _mm512_and_si512(head[1], m6);  // bytes: scales 0..3
      const __m512i mins_lo = _mm512_and_si512(head[2], m6);    // mins 0..3
      const __m512i scales_hi = _mm512_or_si512(_mm512_and_si512(head[3], m4),
                                                _mm512_and_si512(_mm512_srli_epi32(head[1], 2), top2));
      const __m512i mins_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(head[3], 4), m4),
                                              _mm512_and_si512(_mm512_srli_epi32(head[2], 2), top2));
      __m512i isum[T], msum[T];
      for (int t = 0; t < T; ++t) {
        isum[t] = _mm512_setzero_si512();
        const int16_t* sums = subsums + 8 * ((t0 + t) * nb + b);
        msum[t] = _mm512_setzero_si512();
        for (int p = 0; p < 4; ++p) {
          const __m512i mins = _mm512_shuffle_epi8(p < 2 ? mins_lo : mins_hi, pick_pair(2 * (p % 2)));
          msum[t] = _mm512_dpwssd_epi32(msum[t], mins, Broadcast4(reinterpret_cast<const int8_t*>(sums + 2 * p)));
        }
      }
      for (int c = 0; c < 4; ++c) {
        __m512i q[8];
        Vectors<kPacked>(w, offset, 4 + 8 * c, 8, q);
        const __m512i sc_lo = _mm512_shuffle_epi8(c < 2 ? scales_lo : scales_hi, pick_byte((2 * c) % 4));
        const __m512i sc_hi = _mm512_shuffle_epi8(c < 2 ? scales_lo : scales_hi, pick_byte((2 * c + 1) % 4));
        __m512i lo[8], hi[8];
        for (int k = 0; k < 8; ++k) {
          lo[k] = _mm512_and_si512(q[k], m4);
          hi[k] = _mm512_and_si512(_mm512_srli_epi16(q[k], 4), m4);
        }
        for (int t = 0; t < T; ++t) {
          const int8_t* x = a.qs + ((t0 + t) * nb + b) * kQK_K + 64 * c;
          __m512i dlo = _mm512_setzero_si512(), dhi = _mm512_setzero_si512();
          for (int k = 0; k < 8; ++k) {
            dlo = _mm512_dpbusd_epi32(dlo, lo[k], Broadcast4(x + 4 * k));
            dhi = _mm512_dpbusd_epi32(dhi, hi[k], Broadcast4(x + 32 + 4 * k));
          }
          isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(dlo, sc_lo), _mm512_mullo_epi32(dhi, sc_hi)));
        }
      }
      for (int t = 0; t < T; ++t) {
        const __m512 dx = _mm512_set1_ps(a.d[(t0 + t) * nb + b]);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(d, dx), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(dmin, dx), acc[t]);
      }
    }
    const __mmask16 keep = static_cast<__mmask16>((1u << valid) - 1);
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(job.y + (t0 + t) * job.rows + r0, keep, acc[t]);
  }
};

// Q4_0, Q8_0 and Q4_K weights; the other types go to matmul_avx2-inl.h's kernels.
void VnniMatmulRows(const MatmulJob& job, RowDispenser& rows) {
  if (job.type == DType::Q4_0) return RowLaneRows(Block32Tile<Q4_0RowLaneFormat>(job), rows);
  if (job.type == DType::Q8_0) return RowLaneRows(Block32Tile<Q8_0RowLaneFormat>(job), rows);
  return RowLaneRows(Q4_KRowLanes{job, SubBlockSums(job.acts, job.n)}, rows);
}

#endif  // LL_X86_VNNI

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#endif  // LL_KERNELS_MATMUL_VNNI_INL_H_ toggle
