// Streaming attention over F32 / F16 / Q8_0 cache rows, a block of positions at a time. The
// scores of a group's heads come from tiled keys column by column, several heads and tiles per
// pass, or from Q8_0 key rows widened to float once per block as small matrix-vector products;
// the weighted value rows, read in place (F32, F16) or widened once per block (Q8_0), are added
// to register-held outputs of up to four heads at a time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/cache_control.h"
#include "hwy/contrib/math/math-inl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/check.h"
#include "core/quant_blocks.h"
#include "kernels/attention.h"
#include "kernels/quantize.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Positions per block: the block's widened rows and the scores of all heads of a group stay in L1.
constexpr int64_t kBlock = 64;

// The lanes of d at p, of T (float or hwy::float16_t), in float.
template <class D, typename T>
static HWY_INLINE hn::Vec<D> LoadAsFloat(D d, const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(d, p);
  } else {
    return hn::PromoteTo(d, hn::LoadU(hn::Rebind<hwy::float16_t, D>(), p));
  }
}

// The cache lines of the `bytes` bytes at row.
static HWY_INLINE void PrefetchRow(const uint8_t* row, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) hwy::Prefetch(row + o);
}

// dst = the n values of one cache row in float.
static HWY_INLINE void DecodeRow(DType type, const uint8_t* src, float* dst, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  if (type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (type == DType::F16) {
    const auto* h = reinterpret_cast<const hwy::float16_t*>(src);
    int64_t i = 0;
    for (; i + N <= n; i += N) hn::StoreU(LoadAsFloat(df, h + i), df, dst + i);
    if (i < n) dequantize_row(DType::F16, src + 2 * i, dst + i, n - i);
  } else {
    const hn::Rebind<int32_t, decltype(df)> di;
    const hn::Rebind<int8_t, decltype(df)> d8;
    for (int64_t b = 0; b < n / kQK8_0; ++b) {
      const uint8_t* blk = src + b * static_cast<int64_t>(sizeof(BlockQ8_0));
      uint16_t bits;
      std::memcpy(&bits, blk, 2);
      const float d = fp16_to_fp32(bits);
      const auto* qs = reinterpret_cast<const int8_t*>(blk + 2);
      float* out = dst + b * kQK8_0;
      int64_t j = 0;
      for (; j + N <= kQK8_0; j += N) {
        const auto q = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, qs + j)));
        hn::StoreU(hn::Mul(q, hn::Set(df, d)), df, out + j);
      }
      for (; j < kQK8_0; ++j) out[j] = static_cast<float>(qs[j]) * d;
    }
  }
}

static HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc = hn::Zero(df);
  for (int64_t i = 0; i < n; i += N) acc = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc);
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

// s[p] = q . keys[p] for the rows p < n of `width` floats (a whole number of vectors). With
// fixed-size vectors, N rows at a time: one accumulator each, then their lanes summed pairwise
// into one vector whose lane j is row j's score, instead of one horizontal sum per row. Rows
// from n up to the next multiple of N must be readable; their scores land in s[n, ...).
// kWidth > 0 fixes the width at compile time: the loop over it unrolls and the accumulators
// stay in registers (with a variable width GCC keeps them on the stack).
template <int64_t kWidth>
static HWY_INLINE void ScoreRowsOf(const float* q, const float* keys, int64_t width, int64_t n, float* s) {
  if constexpr (kWidth > 0) width = kWidth;
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
  for (int64_t p = 0; p < n; ++p) s[p] = Dot(q, keys + p * width, width);
#else
  const hn::ScalableTag<float> df;
  constexpr size_t kN = hn::MaxLanes(hn::ScalableTag<float>());
  using V = hn::Vec<decltype(df)>;
  for (int64_t p0 = 0; p0 < n; p0 += static_cast<int64_t>(kN)) {
    const float* rows = keys + p0 * width;
    V acc[kN];
    for (V& a : acc) a = hn::Zero(df);
    for (int64_t i = 0; i < width; i += static_cast<int64_t>(kN)) {
      const V qv = hn::LoadU(df, q + i);
      for (size_t j = 0; j < kN; ++j) acc[j] = hn::MulAdd(qv, hn::LoadU(df, rows + j * width + i), acc[j]);
    }
    // Each pass halves the vectors: lanes (2i, 2i+1) of a and of b become lane i of the lower
    // and of the upper half, so the order of the rows is kept.
    for (size_t live = kN; live > 1; live /= 2) {
      for (size_t j = 0; j < live / 2; ++j) {
        const V a = acc[2 * j], b = acc[2 * j + 1];
        acc[j] = hn::Add(hn::ConcatEven(df, b, a), hn::ConcatOdd(df, b, a));
      }
    }
    hn::StoreU(acc[0], df, s + p0);
  }
#endif
}

// The common head lengths (64 and 128 floats) get their own unrolled copy.
static HWY_INLINE void ScoreRows(const float* q, const float* keys, int64_t width, int64_t n, float* s) {
  if (width == 64) return ScoreRowsOf<64>(q, keys, width, n, s);
  if (width == 128) return ScoreRowsOf<128>(q, keys, width, n, s);
  ScoreRowsOf<0>(q, keys, width, n, s);
}

// Four heads' accumulators and a value row take 21 vectors: only targets with 32 registers.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr bool kWideRegisterFile = false;
#else
constexpr bool kWideRegisterFile = true;
#endif

// Lanes of the tiled keys' columns: a tile's positions of one column, or a part of them.
using TileTag = hn::CappedTag<float, kKeyTile>;

// Column i of a tile of T (float or hwy::float16_t), positions p0 .. p0 + lanes - 1 of the tile.
template <typename T>
static HWY_INLINE hn::Vec<TileTag> LoadKeyColumn(const uint8_t* tile, int64_t i, int64_t p0) {
  return LoadAsFloat(TileTag(), reinterpret_cast<const T*>(tile) + i * kKeyTile + p0);
}

// Vectors per tile column, and the accumulators a pass over tiles may keep: half the registers.
constexpr int kTileVectors = static_cast<int>(kKeyTile / hn::MaxLanes(TileTag()));
constexpr int kScoreAccumulators = kWideRegisterFile ? 16 : 8;
// Heads per pass over the tiles, and tiles per pass for kHeads heads (at most a block's).
constexpr int kScoreHeads = std::max(1, kScoreAccumulators / kTileVectors);
template <int kHeads>
constexpr int kScoreTiles = std::clamp(kScoreAccumulators / (kHeads * kTileVectors), 1, static_cast<int>(kBlock / kKeyTile));

// Value rows of one head in place: position p's at base + p * stride, `bytes` long.
struct ValueRows {
  const uint8_t* base = nullptr;  // none
  size_t stride = 0;
  int64_t bytes = 0;
};

// s[j * s_stride + t * kKeyTile + p] = q_j . key p of tile t for the kHeads heads j (queries
// `width` floats apart) and the kTiles tiles t (`tile_stride` bytes apart) of one key/value head
// in T: each column's vectors of positions times the heads' query values, so the scores need no
// sums across lanes and each column is read once for all the heads and tiles of the pass.
//
// Meanwhile the same head's part of the tiles at `later` and the value rows of their positions
// (`later_values`; none: null) are prefetched, a few lines per column: a block's prefetches
// issued together left the loads after them waiting on memory, and value rows prefetched by
// the loop that reads the values arrived no sooner than unprefetched ones.
template <int kHeads, int kTiles, typename T>
static HWY_INLINE void ScoreTiles(const uint8_t* tile, size_t tile_stride, int64_t head_dim, const float* q, int64_t width,
                                  float* s, int64_t s_stride, const uint8_t* later, const ValueRows& later_values) {
  const TileTag d;
  constexpr int64_t kColumnsPerLine = std::max<int64_t>(1, 64 / (kKeyTile * sizeof(T)));
  const auto prefetch_column = [&](int64_t i) {
    if (later != nullptr && i % kColumnsPerLine == 0) {
      for (int t = 0; t < kTiles; ++t) hwy::Prefetch(later + t * tile_stride + i * kKeyTile * sizeof(T));
    }
    for (int64_t r = i; r < kTiles * kKeyTile && later_values.base != nullptr; r += head_dim) {
      PrefetchRow(later_values.base + r * later_values.stride, later_values.bytes);
    }
  };
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t i = 0; i < head_dim; ++i) prefetch_column(i);
  for (int j = 0; j < kHeads; ++j) {
    for (int t = 0; t < kTiles; ++t) {
      for (int64_t p0 = 0; p0 < kKeyTile; p0 += N) {
        auto acc = hn::Zero(d);
        for (int64_t i = 0; i < head_dim; ++i) {
          acc = hn::MulAdd(hn::Set(d, q[j * width + i]), LoadKeyColumn<T>(tile + t * tile_stride, i, p0), acc);
        }
        hn::StoreU(acc, d, s + j * s_stride + t * kKeyTile + p0);
      }
    }
  }
#else
  constexpr int kN = static_cast<int>(hn::MaxLanes(d)), kColumnVectors = kTiles * kTileVectors;
  using V = hn::Vec<TileTag>;
  V acc[kHeads][kColumnVectors];
  for (auto& head : acc) {
    for (V& a : head) a = hn::Zero(d);
  }
  for (int64_t i = 0; i < head_dim; ++i) {
    prefetch_column(i);
    V column[kColumnVectors];
    for (int c = 0; c < kColumnVectors; ++c) column[c] = LoadKeyColumn<T>(tile + c / kTileVectors * tile_stride, i, c % kTileVectors * kN);
    for (int j = 0; j < kHeads; ++j) {
      const V qj = hn::Set(d, q[j * width + i]);
      for (int c = 0; c < kColumnVectors; ++c) acc[j][c] = hn::MulAdd(qj, column[c], acc[j][c]);
    }
  }
  // Tile t's vectors follow tile t - 1's, as its positions do.
  for (int j = 0; j < kHeads; ++j) {
    for (int c = 0; c < kColumnVectors; ++c) hn::StoreU(acc[j][c], d, s + j * s_stride + c * kN);
  }
#endif
}

// out[j] += sum_p w[j * w_stride + p] values[p] for the kHeads heads j (outputs `width` apart),
// over the value rows p < n of T (`row_stride` elements apart; `width` columns, a whole number
// of vectors): four vectors of columns of every head stay in registers through the rows, so each
// value row is loaded once for all kHeads heads and no output is stored per position.
template <int kHeads, typename T>
static HWY_INLINE void AddWeightedRows(const T* values, int64_t row_stride, int64_t width, int64_t n, const float* w,
                                       int64_t w_stride, float* out) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
#if HWY_HAVE_SCALABLE
  // Sizeless (SVE) vectors cannot form arrays: one head and one vector of columns at a time.
  for (int j = 0; j < kHeads; ++j) {
    for (int64_t i = 0; i < width; i += N) {
      auto acc = hn::LoadU(df, out + j * width + i);
      for (int64_t p = 0; p < n; ++p) acc = hn::MulAdd(hn::Set(df, w[j * w_stride + p]), LoadAsFloat(df, values + p * row_stride + i), acc);
      hn::StoreU(acc, df, out + j * width + i);
    }
  }
#else
  using V = hn::Vec<decltype(df)>;
  int64_t i = 0;
  for (; i + 4 * N <= width; i += 4 * N) {
    V acc[kHeads][4];
    for (int j = 0; j < kHeads; ++j) {
      for (int c = 0; c < 4; ++c) acc[j][c] = hn::LoadU(df, out + j * width + i + c * N);
    }
    for (int64_t p = 0; p < n; ++p) {
      const T* x = values + p * row_stride + i;
      const V x0 = LoadAsFloat(df, x), x1 = LoadAsFloat(df, x + N), x2 = LoadAsFloat(df, x + 2 * N), x3 = LoadAsFloat(df, x + 3 * N);
      for (int j = 0; j < kHeads; ++j) {
        const V c = hn::Set(df, w[j * w_stride + p]);
        acc[j][0] = hn::MulAdd(c, x0, acc[j][0]), acc[j][1] = hn::MulAdd(c, x1, acc[j][1]);
        acc[j][2] = hn::MulAdd(c, x2, acc[j][2]), acc[j][3] = hn::MulAdd(c, x3, acc[j][3]);
      }
    }
    for (int j = 0; j < kHeads; ++j) {
      for (int c = 0; c < 4; ++c) hn::StoreU(acc[j][c], df, out + j * width + i + c * N);
    }
  }
  for (; i < width; i += N) {
    V acc[kHeads];
    for (int j = 0; j < kHeads; ++j) acc[j] = hn::LoadU(df, out + j * width + i);
    for (int64_t p = 0; p < n; ++p) {
      const V x = LoadAsFloat(df, values + p * row_stride + i);
      for (int j = 0; j < kHeads; ++j) acc[j] = hn::MulAdd(hn::Set(df, w[j * w_stride + p]), x, acc[j]);
    }
    for (int j = 0; j < kHeads; ++j) hn::StoreU(acc[j], df, out + j * width + i);
  }
#endif
}

// The largest of s[0, n).
static HWY_INLINE float MaxOf(const float* s, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  auto acc = hn::Set(df, -std::numeric_limits<float>::infinity());
  int64_t p = 0;
  for (; p + N <= n; p += N) acc = hn::Max(acc, hn::LoadU(df, s + p));
  float m = hn::GetLane(hn::MaxOfLanes(df, acc));
  for (; p < n; ++p) m = std::max(m, s[p]);
  return m;
}

// s[p] = exp(s[p] - m) for p < n; returns their sum. Vector exp: a scalar one per score was a
// large share of the time per cached position.
static HWY_INLINE float ExpShiftedSum(float* s, float m, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto vm = hn::Set(df, m);
  auto acc = hn::Zero(df);
  int64_t p = 0;
  for (; p + N <= n; p += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, s + p), vm));
    hn::StoreU(e, df, s + p);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; p < n; ++p) sum += (s[p] = std::exp(s[p] - m));
  return sum;
}

// The rows first .. first + n - 1 of every key/value head g < n_kv in float: head g's row p at
// out + g * slab + p * width, its columns from head_dim to width zeros, and the rows from n to
// `padded` zeros. A position's rows of all heads are adjacent in the cache, so the block is read
// in one sequential pass; the rows a block later are prefetched meanwhile (past the range too,
// where the same thread's next chunk usually starts; a prefetch never faults), as reading a block
// only when it starts left the loads waiting on memory.
static HWY_INLINE void WidenBlock(KvRows r, int64_t n_kv, int64_t first, int64_t n, int64_t head_dim, int64_t width,
                                  int64_t padded, int64_t slab, float* out) {
  const int64_t row_span = (n_kv - 1) * static_cast<int64_t>(r.head_stride) + row_bytes(r.type, head_dim);
  for (int64_t p = 0; p < n; ++p) {
    const uint8_t* row = r.data + (first + p) * r.stride;
    PrefetchRow(row + kBlock * r.stride, row_span);
    for (int64_t g = 0; g < n_kv; ++g) {
      float* dst = out + g * slab + p * width;
      DecodeRow(r.type, row + g * r.head_stride, dst, head_dim);
      std::fill(dst + head_dim, dst + width, 0.0f);
    }
  }
  for (int64_t g = 0; g < n_kv; ++g) std::fill(out + g * slab + n * width, out + g * slab + padded * width, 0.0f);
}

// pass(std::integral_constant<int, H>(), j) for heads [j, j + H) that cover [first, n): passes
// of kHeads heads (a power of two) while they fit, then at most one of each smaller power.
template <int kHeads, typename Pass>
static HWY_INLINE void HeadPasses(int64_t n, const Pass& pass, int64_t first = 0) {
  int64_t j = first;
  for (; j + kHeads <= n; j += kHeads) pass(std::integral_constant<int, kHeads>(), j);
  if constexpr (kHeads > 1) HeadPasses<kHeads / 2>(n, pass, j);
}

// The scores of the heads [h0, h0 + nq) of key/value head g at the positions of one block, the
// tiles covering [start, start + n) when the keys are tiled (the block's first position then
// lands at s[start % kKeyTile]), the widened rows otherwise. Meanwhile the rows a block later
// are prefetched (past the range too, as WidenBlock's rows): the tiles by the first pass over
// them, and the head's `values` read in place (none: null base), whose row p is at base +
// p * stride.
static HWY_INLINE void ScoreBlock(KvRows k, int64_t g, int64_t start, int64_t n, const float* queries,
                                  int64_t width, int64_t hd, int64_t nq, const float* widened_keys, float* scores,
                                  int64_t score_stride, const ValueRows& values) {
  const auto later_values = [&](int64_t p) {
    return values.base == nullptr ? ValueRows{} : ValueRows{values.base + (p + kBlock) * values.stride, values.stride, values.bytes};
  };
  if (!k.tiled) {
    const ValueRows later = later_values(start);
    for (int64_t j = 0; j < nq; ++j) {
      ScoreRows(&queries[j * width], widened_keys, width, n, &scores[j * score_stride]);
      for (int64_t p = kBlock * j / nq; later.base != nullptr && p < kBlock * (j + 1) / nq; ++p) {
        PrefetchRow(later.base + p * later.stride, later.bytes);
      }
    }
    return;
  }
  const int64_t first_tile = start / kKeyTile, tiles = (start % kKeyTile + n + kKeyTile - 1) / kKeyTile;
  const uint8_t* head_tiles = k.data + first_tile * k.stride + g * k.head_stride;
  const auto score = [&](auto type) {
    using T = decltype(type);
    HeadPasses<kScoreHeads>(nq, [&](auto heads_per_pass, int64_t j) {
      constexpr int kHeads = decltype(heads_per_pass)::value, kTiles = kScoreTiles<kHeads>;
      const float* q = &queries[j * width];
      float* s = &scores[j * score_stride];
      const auto later = [&](int64_t t) { return j == 0 ? head_tiles + (t + kBlock / kKeyTile) * k.stride : nullptr; };
      const auto tile_values = [&](int64_t t) { return j == 0 ? later_values((first_tile + t) * kKeyTile) : ValueRows{}; };
      int64_t t = 0;
      for (; t + kTiles <= tiles; t += kTiles) {
        ScoreTiles<kHeads, kTiles, T>(head_tiles + t * k.stride, k.stride, hd, q, width, s + t * kKeyTile, score_stride,
                                      later(t), tile_values(t));
      }
      for (; t < tiles; ++t) {
        ScoreTiles<kHeads, 1, T>(head_tiles + t * k.stride, k.stride, hd, q, width, s + t * kKeyTile, score_stride, later(t),
                                 tile_values(t));
      }
    });
  };
  if (k.type == DType::F32) {
    score(float());
  } else {
    score(hwy::float16_t());
  }
}

void AttendPart(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, const AttentionPart& part) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t hd = q.head_dim, nq = q.n_q, heads = q.n_kv * nq, width = (hd + N - 1) / N * N;
  // F32 and F16 value rows are read in place where a head's row is whole vectors; others are
  // widened block by block, as Q8_0 keys are.
  const bool widen_values = v.type == DType::Q8_0 || hd != width;
  // Every head's query (scaled) and output, and a block's widened keys and values of every
  // key/value head (a slab each), in rows of whole vectors; the scores of one block for the heads
  // of a group, with room for the tiles around the block or the rows up to a whole vector.
  thread_local std::vector<float> queries, outputs, keys, values, scores, max, sum;
  queries.assign(heads * width, 0.0f);
  outputs.assign(heads * width, 0.0f);
  const int64_t key_slab = (kBlock + N) * width, value_slab = kBlock * width;
  if (!k.tiled) keys.resize(q.n_kv * key_slab);
  if (widen_values) values.resize(q.n_kv * value_slab);
  const int64_t score_stride = kBlock + std::max<int64_t>(2 * kKeyTile, N);
  scores.resize(nq * score_stride);
  max.assign(heads, -std::numeric_limits<float>::infinity());
  sum.assign(heads, 0.0f);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < hd; ++i) queries[h * width + i] = q.q[h * hd + i] * q.scale;
  }
  for (int64_t b0 = 0; b0 < len; b0 += kBlock) {
    const int64_t bn = std::min(kBlock, len - b0), start = first + b0;
    if (!k.tiled) WidenBlock(k, q.n_kv, start, bn, hd, width, (bn + N - 1) / N * N, key_slab, keys.data());
    if (widen_values) WidenBlock(v, q.n_kv, start, bn, hd, width, bn, value_slab, values.data());
    const int64_t offset = k.tiled ? start % kKeyTile : 0;  // of the block's first score
    for (int64_t g = 0; g < q.n_kv; ++g) {
      const int64_t h0 = g * nq;  // the group's first head
      const ValueRows head_values =
          widen_values ? ValueRows{} : ValueRows{v.data + g * v.head_stride, v.stride, row_bytes(v.type, hd)};
      ScoreBlock(k, g, start, bn, &queries[h0 * width], width, hd, nq, k.tiled ? nullptr : &keys[g * key_slab],
                 scores.data(), score_stride, head_values);
      for (int64_t j = 0; j < nq; ++j) {
        const int64_t h = h0 + j;
        float* s = &scores[j * score_stride + offset];
        if (q.softcap > 0.0f || q.alibi != nullptr) {
          for (int64_t p = 0; p < bn; ++p) {
            if (q.softcap > 0.0f) s[p] = q.softcap * std::tanh(s[p] / q.softcap);
            if (q.alibi != nullptr) s[p] -= q.alibi[h] * static_cast<float>(q.query - (start + p));
          }
        }
        const float m = std::max(max[h], MaxOf(s, bn));
        // 0 on the first block (max = -inf); exactly 1 while the maximum holds, which after the
        // first blocks is the rule, so the exponential is not taken then.
        const float rescale = m == max[h] ? 1.0f : std::exp(max[h] - m);
        sum[h] = sum[h] * rescale + ExpShiftedSum(s, m, bn);
        max[h] = m;
        if (rescale != 1.0f) {
          float* o = &outputs[h * width];
          for (int64_t i = 0; i < width; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, o + i), hn::Set(df, rescale)), df, o + i);
        }
      }
      // Four heads per pass over the value rows where the registers hold them, else two.
      const auto add = [&](const auto* rows, int64_t row_stride) {
        HeadPasses<kWideRegisterFile ? 4 : 2>(nq, [&](auto heads_per_pass, int64_t j) {
          AddWeightedRows<decltype(heads_per_pass)::value>(rows, row_stride, width, bn, &scores[j * score_stride + offset],
                                                           score_stride, &outputs[(h0 + j) * width]);
        });
      };
      const uint8_t* rows = v.data + start * v.stride + g * v.head_stride;
      if (widen_values) {
        add(&values[g * value_slab], width);
      } else if (v.type == DType::F32) {
        add(reinterpret_cast<const float*>(rows), static_cast<int64_t>(v.stride / sizeof(float)));
      } else {
        add(reinterpret_cast<const hwy::float16_t*>(rows), static_cast<int64_t>(v.stride / sizeof(hwy::float16_t)));
      }
    }
  }
  for (int64_t h = 0; h < heads; ++h) {
    part.max[h] = max[h];
    part.sum[h] = sum[h];
    std::copy(&outputs[h * width], &outputs[h * width] + hd, part.out + h * hd);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ll::kernels {

HWY_EXPORT(AttendPart);

// At least 4 blocks per chunk, and at most 16 chunks per query: enough to share a long range
// out among threads, few enough that the states to merge stay small.
int64_t attention_chunk(int64_t len) {
  constexpr int64_t kBlock = HWY_NAMESPACE::kBlock, kMaxChunks = 16;
  const int64_t blocks_per_chunk = (len + kMaxChunks * kBlock - 1) / (kMaxChunks * kBlock);
  return std::max<int64_t>(4, blocks_per_chunk) * kBlock;
}

void attend_part(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, const AttentionPart& part) {
  LL_CHECK(len >= 1);
  HWY_DYNAMIC_DISPATCH(AttendPart)(q, k, v, first, len, part);
}

// out = sum_c w_c out_c / sum_c w_c sum_c with w_c = exp(max_c - the largest max), chunk by chunk
// in order. One part gives out_0 * (1 / sum_0).
void merge_attention_parts(const AttentionPart* parts, int64_t n_parts, int64_t heads, int64_t head_dim, float* out) {
  thread_local std::vector<float> weights;
  weights.resize(n_parts);
  for (int64_t h = 0; h < heads; ++h) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < n_parts; ++c) m = std::max(m, parts[c].max[h]);
    float total = 0.0f;
    for (int64_t c = 0; c < n_parts; ++c) total += parts[c].sum[h] * (weights[c] = std::exp(parts[c].max[h] - m));
    float* o = out + h * head_dim;
    std::fill(o, o + head_dim, 0.0f);
    for (int64_t c = 0; c < n_parts; ++c) {
      const float* oc = parts[c].out + h * head_dim;
      for (int64_t i = 0; i < head_dim; ++i) o[i] += weights[c] * oc[i];
    }
    const float inv = 1.0f / total;
    for (int64_t i = 0; i < head_dim; ++i) o[i] *= inv;
  }
}

void attend(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out) {
  LL_CHECK(len >= 1);
  const int64_t chunk = attention_chunk(len), n_parts = (len + chunk - 1) / chunk;
  const int64_t heads = q.n_kv * q.n_q, hd = q.head_dim;
  thread_local std::vector<float> state;
  thread_local std::vector<AttentionPart> parts;
  state.resize(n_parts * heads * (hd + 2));
  parts.resize(n_parts);
  for (int64_t c = 0; c < n_parts; ++c) {
    float* base = &state[c * heads * (hd + 2)];
    parts[c] = {base, base + heads, base + 2 * heads};
    HWY_DYNAMIC_DISPATCH(AttendPart)(q, k, v, first + c * chunk, std::min(chunk, len - c * chunk), parts[c]);
  }
  merge_attention_parts(parts.data(), n_parts, heads, hd, out);
}

void attend_reference(const AttentionQuery& q, KvRows k, KvRows v, int64_t first, int64_t len, float* out) {
  LL_CHECK(len >= 1);
  const int64_t hd = q.head_dim;
  std::vector<float> keys(len * hd), values(len * hd), s(len);
  for (int64_t h = 0; h < q.n_kv * q.n_q; ++h) {
    const int64_t g = h / q.n_q;
    for (int64_t p = 0; p < len; ++p) {
      if (k.tiled) {
        for (int64_t i = 0; i < hd; ++i) {
          const uint8_t* at = k.data + tiled_offset(k, first + p, g, i);
          float& key = keys[p * hd + i];
          if (k.type == DType::F32) {
            std::memcpy(&key, at, sizeof key);
          } else {
            uint16_t bits;
            std::memcpy(&bits, at, sizeof bits);
            key = fp16_to_fp32(bits);
          }
        }
      } else {
        dequantize_row(k.type, k.data + (first + p) * k.stride + g * k.head_stride, &keys[p * hd], hd);
      }
      dequantize_row(v.type, v.data + (first + p) * v.stride + g * v.head_stride, &values[p * hd], hd);
    }
    const float* qh = q.q + h * hd;
    for (int64_t p = 0; p < len; ++p) {
      float dot = 0.0f;
      for (int64_t i = 0; i < hd; ++i) dot += qh[i] * keys[p * hd + i];
      s[p] = dot * q.scale;
      if (q.softcap > 0.0f) s[p] = q.softcap * std::tanh(s[p] / q.softcap);
      if (q.alibi != nullptr) s[p] -= q.alibi[h] * static_cast<float>(q.query - (first + p));
    }
    const float m = *std::max_element(s.begin(), s.end());
    float total = 0.0f;
    for (float& x : s) total += (x = std::exp(x - m));
    float* oh = out + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for (int64_t p = 0; p < len; ++p) {
      for (int64_t i = 0; i < hd; ++i) oh[i] += s[p] / total * values[p * hd + i];
    }
  }
}

}  // namespace ll::kernels
#endif  // HWY_ONCE
