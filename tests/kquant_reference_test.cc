// The 256-element types (Q4_K, Q6_K, Q5_K, Q3_K, Q2_K, IQ4_XS) against llama.cpp's own blocks
// (shared/data/reference/quant-blocks): its blocks dequantize to exactly its floats, our
// quantizer writes its bytes for the same source, and our dot products (scalar twin and the
// dispatched SIMD kernel) agree with its vec_dot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gguf/gguf_file.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"
#include "test_data.h"

namespace ll::kernels {
namespace {

constexpr int64_t kCols = 512;
constexpr int64_t kRows = 8;

class KQuantReferenceTest : public ::testing::TestWithParam<DType> {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = test::shared_data("reference/quant-blocks/");
    auto file = gguf::GgufFile::open(dir + "quant-blocks.gguf");
    ASSERT_TRUE(file.ok()) << file.status().message();
    file_ = file.value().release();
    std::string text;
    ASSERT_NO_FATAL_FAILURE(text = test::read_text(dir + "quant-blocks.json"));
    json_ = new nlohmann::json(nlohmann::json::parse(text));
  }
  static void TearDownTestSuite() {
    delete file_;
    delete json_;
    file_ = nullptr;
    json_ = nullptr;
  }

  // A tensor's bytes, checked to have the expected type and size (rows of kCols).
  static const uint8_t* tensor(const std::string& name, DType type, int64_t rows = kRows) {
    const gguf::TensorInfo* t = file_->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) return nullptr;
    EXPECT_EQ(t->type, type) << name;
    EXPECT_EQ(t->nbytes, static_cast<uint64_t>(row_bytes(type, kCols) * rows)) << name;
    return t->data;
  }
  static const float* floats(const std::string& name, int64_t rows = kRows) {
    return reinterpret_cast<const float*>(tensor(name, DType::F32, rows));
  }
  static std::string lower(DType t) {
    std::string s(dtype_name(t));
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static const nlohmann::json& type_json(DType t) { return (*json_)["types"][std::string(dtype_name(t))]; }

  static gguf::GgufFile* file_;
  static nlohmann::json* json_;
};

gguf::GgufFile* KQuantReferenceTest::file_ = nullptr;
nlohmann::json* KQuantReferenceTest::json_ = nullptr;

TEST_P(KQuantReferenceTest, DequantizesLlamaCppBlocksExactly) {
  const DType t = GetParam();
  const uint8_t* w = tensor(lower(t) + ".weight", t);
  const float* want = floats(lower(t) + ".dequant");
  ASSERT_TRUE(w && want);
  std::vector<float> got(kCols * kRows);
  dequantize_row(t, w, got.data(), kCols * kRows);
  for (int64_t i = 0; i < kCols * kRows; ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << dtype_name(t) << " element " << i << ": " << got[i] << " vs " << want[i];
  }
}

TEST_P(KQuantReferenceTest, QuantizerWritesLlamaCppBytes) {
  const DType t = GetParam();
  const float* source = floats("source.f32");
  const uint8_t* want = tensor(lower(t) + ".weight", t);
  ASSERT_TRUE(source && want);
  const int64_t rb = row_bytes(t, kCols);
  std::vector<uint8_t> got(rb * kRows);
  for (int64_t r = 0; r < kRows; ++r) quantize_row(t, source + r * kCols, got.data() + r * rb, kCols);
  for (int64_t i = 0; i < rb * kRows; ++i) {
    ASSERT_EQ(got[i], want[i]) << dtype_name(t) << " byte " << i << " (row " << i / rb << ", block "
                               << i % rb / dtype_info(t).block_bytes << ")";
  }
}

// vec_dot comes from ggml's AVX2/AVX-512 code, which adds the same integer block sums in
// another order than ours: the results agree to float32 rounding of the sum of the
// magnitudes of the terms, well under 1e-5 of it.
TEST_P(KQuantReferenceTest, DotProductsAgreeWithVecDot) {
  const DType t = GetParam();
  const uint8_t* w = tensor(lower(t) + ".weight", t);
  const float* act = floats("activation.f32", 1);
  const float* dequant = floats(lower(t) + ".dequant");
  ASSERT_TRUE(w && act && dequant);
  const auto& want = type_json(t)["vec_dot"];
  ASSERT_EQ(want.size(), static_cast<size_t>(kRows));
  std::vector<float> ref(kRows), simd(kRows);
  matmul_reference(t, w, kRows, kCols, act, 1, ref.data());
  matmul(t, w, kRows, kCols, act, 1, simd.data(), nullptr);
  for (int64_t r = 0; r < kRows; ++r) {
    double mag = 0;
    for (int64_t k = 0; k < kCols; ++k) mag += std::fabs(static_cast<double>(dequant[r * kCols + k]) * act[k]);
    const double v = want[r].get<double>();
    EXPECT_NEAR(ref[r], v, 1e-5 * mag) << dtype_name(t) << " scalar twin, row " << r;
    EXPECT_NEAR(simd[r], v, 1e-5 * mag) << dtype_name(t) << " " << simd_target_name() << ", row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KQuantReferenceTest,
                         ::testing::Values(DType::Q4_K, DType::Q6_K, DType::Q5_K, DType::Q3_K, DType::Q2_K, DType::IQ4_XS),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace ll::kernels
