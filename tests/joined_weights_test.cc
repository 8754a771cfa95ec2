// Matrices back to back in memory multiply as one (exec/joined_weights.h): the joined product
// is the separate products' bits side by side, and matrices that cannot be joined are not.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "exec/joined_weights.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"

namespace ll::exec {
namespace {

constexpr int64_t kCols = 256;

// Quantized rows of random weights, back to back in one buffer.
std::vector<uint8_t> random_rows(DType t, int64_t rows, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> row(kCols);
  std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes(t, kCols)));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = dist(rng);
    kernels::quantize_row(t, row.data(), bytes.data() + r * row_bytes(t, kCols), kCols);
  }
  return bytes;
}

model::WeightRef ref(DType t, const uint8_t* data, int64_t rows) {
  model::WeightRef w;
  w.type = t;
  w.data = data;
  w.cols = kCols;
  w.rows = rows;
  return w;
}

TEST(JoinedWeights, JoinedProductIsTheSeparateProductsSideBySide) {
  ThreadPool pool(2);
  std::mt19937 rng(3);
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F16}) {
    const std::vector<uint8_t> bytes = random_rows(t, 96, rng);
    const int64_t rb = row_bytes(t, kCols);
    const model::WeightRef q = ref(t, bytes.data(), 64), k = ref(t, bytes.data() + 64 * rb, 16),
                           v = ref(t, bytes.data() + 80 * rb, 16);
    const model::WeightRef qkv = joined_rows({&q, &k, &v});
    ASSERT_TRUE(qkv.present()) << dtype_name(t);
    EXPECT_EQ(qkv.rows, 96);
    for (int64_t n : {1, 5}) {
      std::vector<float> x(static_cast<size_t>(n * kCols));
      for (float& e : x) e = std::normal_distribution<float>(0.0f, 1.0f)(rng);
      std::vector<float> joined(static_cast<size_t>(n * 96));
      kernels::matmul(t, qkv.data, qkv.rows, kCols, x.data(), n, joined.data(), &pool);
      int64_t first = 0;
      for (const model::WeightRef* part : {&q, &k, &v}) {
        std::vector<float> alone(static_cast<size_t>(n * part->rows));
        kernels::matmul(t, part->data, part->rows, kCols, x.data(), n, alone.data(), &pool);
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_EQ(0, std::memcmp(&joined[i * 96 + first], &alone[i * part->rows], part->rows * sizeof(float)))
              << dtype_name(t) << " n " << n << " rows from " << first;
        }
        first += part->rows;
      }
    }
  }
}

TEST(JoinedWeights, MatricesApartOrUnlikeAreNotJoined) {
  std::mt19937 rng(5);
  const std::vector<uint8_t> bytes = random_rows(DType::Q4_0, 64, rng);
  const int64_t rb = row_bytes(DType::Q4_0, kCols);
  const model::WeightRef a = ref(DType::Q4_0, bytes.data(), 16);
  const model::WeightRef gap = ref(DType::Q4_0, bytes.data() + 17 * rb, 16);
  EXPECT_FALSE(joined_rows({&a, &gap}).present()) << "a gap between them";
  model::WeightRef other_type = ref(DType::Q8_0, bytes.data() + 16 * rb, 8);
  EXPECT_FALSE(joined_rows({&a, &other_type}).present()) << "another type";
  const model::WeightRef absent;
  EXPECT_FALSE(joined_rows({&a, &absent}).present()) << "one absent";
  // Packed, a matrix of 8 rows keeps them unpacked: it may end a joined matrix, not start one.
  model::WeightRef eight = ref(DType::Q4_0, bytes.data(), 8), next = ref(DType::Q4_0, bytes.data() + 8 * rb, 16);
  eight.layout = next.layout = kernels::WeightLayout::kRowLanes;
  EXPECT_FALSE(joined_rows({&eight, &next}).present()) << "packed, 8 rows first";
  model::WeightRef sixteen = ref(DType::Q4_0, bytes.data(), 16), last = ref(DType::Q4_0, bytes.data() + 16 * rb, 8);
  sixteen.layout = last.layout = kernels::WeightLayout::kRowLanes;
  EXPECT_TRUE(joined_rows({&sixteen, &last}).present()) << "packed, 8 rows last";
  model::WeightRef file_layout = ref(DType::Q4_0, bytes.data() + 16 * rb, 8);
  EXPECT_FALSE(joined_rows({&sixteen, &file_layout}).present()) << "one packed, one not";
}

}  // namespace
}  // namespace ll::exec
