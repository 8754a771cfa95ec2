#pragma once
// Matrix multiplication of quantized weights by float activations. Highway picks the best
// SIMD target at run time; every SIMD kernel has a scalar twin (*_reference) for tests.
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/weight_layout.h"

namespace ll::kernels {

// W: `rows` rows of `cols` elements of type t, row-major, each row row_bytes(t, cols) bytes.
// X: n activation vectors of `cols` floats (row-major, n x cols).
// Y: n x rows floats: Y[i*rows + r] = dot(W[r], X[i]).
// Quantized weights are multiplied against activations quantized the way llama.cpp does
// (Q8_0 for Q4_0/Q5_0/IQ4_NL/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants), so results agree
// with it.
// `pool` may be null (single thread). Rows are split across threads.
void matmul(DType t, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n, float* Y,
            ThreadPool* pool, WeightLayout layout = WeightLayout::kFile);

// Whether this machine's kernels read weights of type t faster after pack_row_lanes: on
// AVX-512 VNNI, Q4_0, Q8_0 and Q4_K, whose kernels put 16 rows in the 16 lanes of a vector and
// otherwise transpose every block of the 16 rows as they read it.
bool packs_row_lanes(DType t);
// Repacks W (rows x cols of type t, packs_row_lanes(t)) in place, each group of 16 rows
// transposed once. Per block: Q4_0 and Q8_0 put the 16 rows' fp16 scales first; then the
// block's dwords follow as 64-byte vectors, dword j of vector m being dword m of row j (Q8_0's
// quants xor 0x80, as unsigned bytes). The last rows % 16 rows stay as in the file. matmul
// then gives the same bits as before.
void pack_row_lanes(DType t, void* W, int64_t rows, int64_t cols);

// Scalar twin of matmul: same arithmetic, no SIMD, no threads.
void matmul_reference(DType t, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n,
                      float* Y);

// Name of the SIMD target chosen at run time (e.g. "AVX2", "AVX3", "NEON", "EMU128").
const char* simd_target_name();

}  // namespace ll::kernels
