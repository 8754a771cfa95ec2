// Every SIMD matmul kernel against its scalar twin, on every compiled and supported Highway
// target, over row counts that are not multiples of the row tile, token counts that are not
// multiples of the token tile, misaligned weights and activations, and 1 or 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "highway_target_scope.h"
#include "hwy/targets.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

namespace ll::kernels {
namespace {

using test::TargetScope;

// Every target the CPU has that the matmul kernels are compiled for (not SVE: see
// matmul_simd.cc).
std::vector<int64_t> targets() {
  std::vector<int64_t> kernel_targets;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    if (t & detail::compiled_targets()) kernel_targets.push_back(t);
  }
  return kernel_targets;
}

// A quantized matrix stored `offset` bytes past a 64-byte boundary, as its dequantized
// floats (to bound the rounding error of the float sums).
struct Matrix {
  std::vector<uint8_t> storage;
  const uint8_t* data;
  std::vector<float> dequantized;  // [rows][cols]
};

Matrix make_matrix(DType t, int64_t rows, int64_t cols, int offset, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t rb = row_bytes(t, cols);
  Matrix m;
  m.storage.resize(rows * rb + 128);
  const uintptr_t base = reinterpret_cast<uintptr_t>(m.storage.data());
  uint8_t* p = m.storage.data() + (64 - base % 64) % 64 + offset;
  std::vector<float> row(cols);
  m.dequantized.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    // Varying magnitudes per row and a few outliers, as in real weights.
    const float scale = 0.02f * (1 + r % 5);
    for (int64_t k = 0; k < cols; ++k) row[k] = dist(rng) * scale * (k % 97 == 3 ? 8.0f : 1.0f);
    quantize_row(t, row.data(), p + r * rb, cols);
    dequantize_row(t, p + r * rb, m.dequantized.data() + r * cols, cols);
  }
  m.data = p;
  return m;
}

struct Activations {
  std::vector<float> storage;
  const float* data;
};

Activations make_activations(int64_t n, int64_t cols, int offset, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Activations a;
  a.storage.resize(n * cols + 16);
  for (float& v : a.storage) v = dist(rng);
  a.data = a.storage.data() + offset;
  return a;
}

// |y - y_ref| must be within 1e-5 of the sum of |w * x| over the row: both sides add the
// same terms (integer block dot products times the same scales), only in another order.
void expect_close(DType t, const Matrix& w, const float* x, int64_t rows, int64_t cols, int64_t n,
                  const std::vector<float>& y, const std::vector<float>& ref, const std::string& what) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double mag = 0;
      for (int64_t k = 0; k < cols; ++k) mag += std::fabs(w.dequantized[r * cols + k] * x[i * cols + k]);
      const float got = y[i * rows + r], want = ref[i * rows + r];
      ASSERT_NEAR(got, want, 1e-5 * mag * 1.05 + 1e-30)
          << what << " type " << dtype_name(t) << " token " << i << " row " << r;
    }
  }
}

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,   DType::Q4_K,
                        DType::Q6_K, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q5_K,
                        DType::Q3_K, DType::Q2_K, DType::IQ4_XS};

std::vector<int64_t> col_choices(DType t) {
  switch (t) {
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q5_K:
    case DType::Q3_K:
    case DType::Q2_K:
    case DType::IQ4_XS:
      return {256, 512, 1280};
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
    case DType::Q8_0:
      return {32, 64, 96, 416, 1024};
    default:
      return {1, 7, 8, 33, 256, 520};
  }
}

// Byte offsets a GGUF tensor row of type t can have relative to 64-byte alignment in tests:
// any for block types (rows are 18, 34, 144, 210-byte multiples), element-aligned otherwise.
int weight_offset(DType t, int i) {
  const int64_t elem = dtype_info(t).block_elems > 1 ? 1 : dtype_info(t).block_bytes;
  return static_cast<int>((i % 4) * elem);
}

TEST(MatmulTest, SimdMatchesReferenceOnEveryTarget) {
  const int64_t kRows[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 33};
  const int64_t kTokens[] = {1, 2, 3, 5, 8};
  ThreadPool pool1(1), pool2(2);
  ASSERT_FALSE(targets().empty());
  for (int64_t target : targets()) {
    TargetScope scope(target);
    const std::string name = hwy::TargetName(target);
    ASSERT_EQ(name, simd_target_name());
    std::mt19937 rng(1234);
    for (DType t : kTypes) {
      const std::vector<int64_t> cols_list = col_choices(t);
      int i = 0;
      for (int64_t rows : kRows) {
        for (int64_t n : kTokens) {
          ++i;
          const int64_t cols = cols_list[i % cols_list.size()];
          Matrix w = make_matrix(t, rows, cols, weight_offset(t, i), rng);
          Activations x = make_activations(n, cols, i % 4, rng);
          std::vector<float> y(n * rows, NAN), ref(n * rows, NAN);
          matmul_reference(t, w.data, rows, cols, x.data, n, ref.data());
          ThreadPool* pool = i % 3 == 0 ? nullptr : i % 3 == 1 ? &pool1 : &pool2;
          matmul(t, w.data, rows, cols, x.data, n, y.data(), pool);
          expect_close(t, w, x.data, rows, cols, n, y, ref,
                       name + " rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " n " +
                           std::to_string(n));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Every token count 1..17 against row counts around the row tiles (1, 2, 4 and 8 rows),
// single-threaded, so each tile shape and every smaller edge tile runs on every target.
TEST(MatmulTest, EveryTileEdgeMatchesReference) {
  const int64_t kRows[] = {1, 2, 3, 4, 5, 7, 8, 9, 17};
  for (int64_t target : targets()) {
    TargetScope scope(target);
    const std::string name = hwy::TargetName(target);
    std::mt19937 rng(4321);
    for (DType t : kTypes) {
      if (dtype_info(t).block_elems == 1) continue;  // float weights: covered above
      const int64_t cols = col_choices(t)[1];
      int i = 0;
      for (int64_t rows : kRows) {
        for (int64_t n = 1; n <= 17; ++n) {
          ++i;
          Matrix w = make_matrix(t, rows, cols, weight_offset(t, i), rng);
          Activations x = make_activations(n, cols, i % 4, rng);
          std::vector<float> y(n * rows, NAN), ref(n * rows, NAN);
          matmul_reference(t, w.data, rows, cols, x.data, n, ref.data());
          matmul(t, w.data, rows, cols, x.data, n, y.data(), nullptr);
          expect_close(t, w, x.data, rows, cols, n, y, ref,
                       name + " edge rows " + std::to_string(rows) + " n " + std::to_string(n));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Large enough that both threads get rows, and (for n > 1) that rows are walked in several
// L2-sized blocks.
TEST(MatmulTest, ThreadedLargeMatchesReference) {
  ThreadPool pool2(2);
  for (int64_t target : targets()) {
    TargetScope scope(target);
    std::mt19937 rng(99);
    for (DType t : kTypes) {
      for (int64_t n : {1, 7}) {
        const int64_t rows = 77, cols = 4096;
        Matrix w = make_matrix(t, rows, cols, 3 % (dtype_info(t).block_elems > 1 ? 4 : 1), rng);
        Activations x = make_activations(n, cols, 1, rng);
        std::vector<float> y(n * rows, NAN), ref(n * rows, NAN);
        matmul_reference(t, w.data, rows, cols, x.data, n, ref.data());
        matmul(t, w.data, rows, cols, x.data, n, y.data(), &pool2);
        expect_close(t, w, x.data, rows, cols, n, y, ref, std::string(hwy::TargetName(target)) + " large");
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Weights repacked into row lanes give the same bits as the file's layout, including a last
// group of fewer than 16 rows (left unpacked), prompts in several tiles and two threads.
TEST(MatmulTest, RowLanePackingGivesTheSameBits) {
  ThreadPool pool2(2);
  int packing_targets = 0;
  for (int64_t target : targets()) {
    TargetScope scope(target);
    const std::string name = hwy::TargetName(target);
    std::mt19937 rng(7);
    for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::F16}) {
      if (!packs_row_lanes(t)) continue;
      ++packing_targets;
      for (int64_t rows : {16, 37, 77}) {
        for (int64_t cols : {col_choices(t)[1], col_choices(t).back()}) {
          Matrix w = make_matrix(t, rows, cols, rows % 4, rng);
          std::vector<uint8_t> packed(w.data, w.data + rows * row_bytes(t, cols));
          pack_row_lanes(t, packed.data(), rows, cols);
          EXPECT_NE(0, std::memcmp(packed.data(), w.data, 16 * row_bytes(t, cols))) << name;
          for (int64_t n : {1, 3, 17, 40}) {
            Activations x = make_activations(n, cols, 0, rng);
            for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
              std::vector<float> y(n * rows, NAN), file(n * rows, NAN);
              matmul(t, w.data, rows, cols, x.data, n, file.data(), pool);
              matmul(t, packed.data(), rows, cols, x.data, n, y.data(), pool, WeightLayout::kRowLanes);
              ASSERT_EQ(0, std::memcmp(y.data(), file.data(), y.size() * sizeof(float)))
                  << name << " " << dtype_name(t) << " rows " << rows << " cols " << cols << " n " << n;
            }
          }
        }
      }
    }
  }
  if (packing_targets == 0) GTEST_SKIP() << "no kernel of this CPU reads a packed layout";
}

// The activation quantizers of every target produce the same bytes as the scalar twin,
// including rounding ties (Q8_0 rounds half away from zero, Q8_K half to even) and the Q8_1
// block sums.
TEST(MatmulTest, ActivationQuantizationIsBitExact) {
  const int64_t n = 3, cols = 512;
  std::mt19937 rng(7);
  std::vector<float> x(n * cols);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (float& v : x) v = dist(rng);
  // Token 1: blocks whose scale is exactly 1 (max |x| = 127), with many .5 values.
  for (int64_t k = 0; k < cols; ++k) x[cols + k] = (k % 32 == 0) ? -127.0f : static_cast<float>(k % 9) - 4.5f;
  // Token 2: a zero block and a block whose largest magnitude appears with both signs.
  for (int64_t k = 0; k < 256; ++k) x[2 * cols + k] = 0.0f;
  x[2 * cols + 300] = 3.0f;
  x[2 * cols + 301] = -3.0f;
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q4_K}) {
    detail::MatmulJob job{t, nullptr, 0, cols, 0, x.data(), n, nullptr, {}};
    const int64_t bytes = detail::acts_bytes(t, cols, n);
    std::vector<uint8_t> want_buf(bytes + 64), got_buf(bytes + 64);
    auto aligned = [](std::vector<uint8_t>& b) {
      return b.data() + (64 - reinterpret_cast<uintptr_t>(b.data()) % 64) % 64;
    };
    detail::MatmulJob want = job, got = job;
    want.acts = detail::acts_layout(t, cols, n, aligned(want_buf));
    std::fill(want_buf.begin(), want_buf.end(), 0);
    detail::quantize_acts_reference(want, 0, n);
    for (int64_t target : targets()) {
      TargetScope scope(target);
      std::fill(got_buf.begin(), got_buf.end(), 0);
      got.acts = detail::acts_layout(t, cols, n, aligned(got_buf));
      detail::quantize_acts(got, 0, n);
      EXPECT_EQ(0, std::memcmp(aligned(want_buf), aligned(got_buf), bytes))
          << dtype_name(t) << " on " << hwy::TargetName(target);
    }
    // Same values as ggml's block quantizers of the same floats.
    const detail::QuantizedActs& a = want.acts;
    const int64_t be = detail::act_block_elems(t);
    std::vector<float> from_blocks(cols), from_acts(cols);
    for (int64_t i = 0; i < n; ++i) {
      const DType act_type = be == 32 ? DType::Q8_0 : DType::Q8_K;
      std::vector<uint8_t> blocks(row_bytes(act_type, cols));
      quantize_row(act_type, x.data() + i * cols, blocks.data(), cols);
      dequantize_row(act_type, blocks.data(), from_blocks.data(), cols);
      for (int64_t k = 0; k < cols; ++k) from_acts[k] = a.d[i * a.blocks + k / be] * a.qs[i * cols + k];
      EXPECT_EQ(from_blocks, from_acts) << dtype_name(t) << " token " << i;
    }
  }
}

// Known values: a Q4_0 row times a Q8_0-exact activation gives the exact product.
TEST(MatmulTest, Q4_0KnownValues) {
  // One block: d = 1 (fp16 0x3C00), quants 0..15, 0..15 -> values -8..7, -8..7.
  uint8_t block[18] = {0x00, 0x3C};
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | (j << 4));
  // x = 127 at element 0, 1 elsewhere: the activation scale is exactly 1.
  std::vector<float> x(32, 1.0f);
  x[0] = 127.0f;
  float y = 0;
  matmul(DType::Q4_0, block, 1, 32, x.data(), 1, &y, nullptr);
  // sum over both halves of (j - 8), minus the first term (-8 * 1), plus -8 * 127.
  const float want = 2 * (-8.0f) - (-8.0f) + (-8.0f * 127.0f);
  EXPECT_EQ(y, want);
}

TEST(MatmulTest, TargetNameIsKnown) { EXPECT_STRNE(simd_target_name(), "Unknown"); }

}  // namespace
}  // namespace ll::kernels
