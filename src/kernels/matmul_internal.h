#pragma once
// Shared between matmul.cc (driver), matmul_simd.cc with its -inl.h files (Highway kernels)
// and matmul_reference.cc (scalar twins). Not part of the public kernel API; tests use it to
// compare the SIMD activation quantizers with their twins.
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/matmul.h"

namespace ll::kernels::detail {

// Activations quantized for integer dot products, structure of arrays so that the kernels
// load each field with one (broadcast) load. Values equal ggml's block_q8_0 / block_q8_K
// of the same floats: Q4_0 and Q8_0 weights pair with Q8_0 activations (blocks of 32),
// K-quants and IQ4_XS weights with Q8_K (super-blocks of 256); see act_block_elems and
// act_has_block_sums for the others.
struct QuantizedActs {
  int64_t blocks = 0;        // blocks per token row: cols / 32 (Q8_0) or cols / 256 (Q8_K)
  int8_t* qs = nullptr;      // [n][blocks * block size], 64-byte aligned rows
  float* d = nullptr;        // [n][blocks] scale (Q8_0: the fp16-rounded value, as ggml reads it)
  int16_t* bsums = nullptr;  // Q8_K only: [n][blocks * 16] sums of 16 qs
  float* s = nullptr;        // Q8_1 only: [n][blocks] d * sum of the block's qs, fp16-rounded
};

// Block size of the activation quantization that weights of type t use; 0 for float weights.
inline int act_block_elems(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
    case DType::Q8_0:
      return 32;
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q5_K:
    case DType::Q3_K:
    case DType::Q2_K:
    case DType::IQ4_XS:
      return 256;
    default:
      return 0;
  }
}

// Weights with a per-block minimum (x = q * d + m) pair with Q8_1 activations, whose block
// sums s multiply m; the other 32-element types pair with Q8_0.
inline bool act_has_block_sums(DType t) { return t == DType::Q4_1 || t == DType::Q5_1; }

// The Q8_1 block sums s of a token row whose qs are already quantized, as
// quantize_row_q8_1_ref computes them (from the scale before its fp16 rounding).
void q8_1_block_sums(const float* x, const int8_t* qs, int64_t nb, float* s);

struct MatmulJob {
  DType type;
  const uint8_t* w;   // [rows][row_bytes]
  int64_t rows;
  int64_t cols;
  int64_t row_bytes;
  const float* x;     // [n][cols]
  int64_t n;
  float* y;           // [n][rows]
  QuantizedActs acts; // filled for quantized weight types
  WeightLayout layout = WeightLayout::kFile;
};

// Hands out chunks of weight rows to threads as they ask, so that a thread that runs slower
// (a little core, or one sharing its core with another process) simply takes fewer chunks
// instead of holding up the others. Each chunk is a share of the rows still left (guided
// scheduling): long while much is left, so that a thread streams its weights in long runs, and
// down to `align` rows at the end, so that the threads finish within a few rows of each other
// (equal chunks leave a thread idle for half a chunk on average at the end of every matmul).
class RowDispenser {
 public:
  // Chunks start at multiples of `align`; a chunk takes 1/shares of the rows left, at least
  // `align` of them. RowDispenser(rows, rows, 1) hands out all rows at once.
  RowDispenser(int64_t rows, int64_t align, int64_t shares) : rows_(rows), align_(align), shares_(shares) {}
  bool next(int64_t* r0, int64_t* r1) {
    int64_t begin = next_.load(std::memory_order_relaxed);
    int64_t end;
    do {
      if (begin >= rows_) return false;
      const int64_t share = (rows_ - begin + shares_ - 1) / shares_;
      end = std::min(rows_, begin + (share + align_ - 1) / align_ * align_);
    } while (!next_.compare_exchange_weak(begin, end, std::memory_order_relaxed));
    *r0 = begin;
    *r1 = end;
    return true;
  }

 private:
  std::atomic<int64_t> next_{0};
  int64_t rows_;
  int64_t align_;
  int64_t shares_;
};

// Dispatched (best SIMD target) and scalar versions of the two phases of a matmul.
// Quantizes activation rows [t0, t1) of job.x into job.acts.
void quantize_acts(const MatmulJob& job, int64_t t0, int64_t t1);
void quantize_acts_reference(const MatmulJob& job, int64_t t0, int64_t t1);
// Computes y for all n tokens and the weight rows of every chunk taken from `rows`
// (acts already quantized).
void matmul_rows(const MatmulJob& job, RowDispenser& rows);
// Whether the dispatched target's kernels read weights of type t in the row-lane layout.
bool target_packs_row_lanes(DType t);
void matmul_rows_reference(const MatmulJob& job, int64_t r0, int64_t r1);
// The Highway targets the kernels are compiled for (a bit set): on a CPU with SVE they run
// NEON, since SVE is not among them.
int64_t compiled_targets();

// Bytes of the activation scratch buffer for n tokens of `cols` and weight type t, and the
// layout of `acts` inside a 64-byte aligned buffer of that size.
int64_t acts_bytes(DType t, int64_t cols, int64_t n);
QuantizedActs acts_layout(DType t, int64_t cols, int64_t n, void* buffer);

}  // namespace ll::kernels::detail
