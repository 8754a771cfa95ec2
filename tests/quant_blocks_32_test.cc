// The 32-element block types against llama.cpp's own output for the same numbers
// (reference/quant-blocks: 8 rows of 512 source floats, one activation row of 512): its blocks
// dequantize to its floats, our quantizer writes its bytes, our quantized activations are its
// bytes, and our matrix-vector products agree with its vec_dot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "gguf/gguf_file.h"
#include "hwy/targets.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"
#include "test_data.h"

namespace ll::kernels {
namespace {

constexpr int64_t kRows = 8;
constexpr int64_t kCols = 512;

// llama.cpp's vec_dot (AVX2/AVX-512 paths) and ours add the same per-block products of
// integers and fp16 scales, only in another order: they may differ by float32 rounding, a few
// units in the last place of the result (seen: up to 1.8e-6 relative).
double dot_tolerance(double want) { return 5e-6 * std::fabs(want) + 2e-6; }

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> bytes(hex.size() / 2);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return bytes;
}

class QuantBlocks32Test : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    const std::string dir = test::shared_data("reference/quant-blocks/");
    auto file = gguf::GgufFile::open(dir + "quant-blocks.gguf");
    ASSERT_TRUE(file.ok()) << file.status().message();
    file_ = std::move(*file);
    std::string text;
    ASSERT_NO_FATAL_FAILURE(text = test::read_text(dir + "quant-blocks.json"));
    const nlohmann::json all = nlohmann::json::parse(text);
    json_ = all.at("types").at(std::string(dtype_name(GetParam())));
    std::string lower(dtype_name(GetParam()));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ASSERT_NO_FATAL_FAILURE(weight_ = tensor(lower + ".weight", GetParam()));
    ASSERT_NO_FATAL_FAILURE(dequant_ = tensor(lower + ".dequant", DType::F32));
    ASSERT_NO_FATAL_FAILURE(source_ = tensor("source.f32", DType::F32));
    ASSERT_NO_FATAL_FAILURE(activation_ = tensor("activation.f32", DType::F32));
  }

  const uint8_t* tensor(const std::string& name, DType type) {
    const gguf::TensorInfo* t = file_->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    if (t == nullptr) return nullptr;
    EXPECT_EQ(t->type, type) << name;
    return t->data;
  }

  const float* floats(const uint8_t* p) const { return reinterpret_cast<const float*>(p); }
  int64_t row_size() const { return row_bytes(GetParam(), kCols); }

  std::unique_ptr<gguf::GgufFile> file_;
  nlohmann::json json_;
  const uint8_t* weight_ = nullptr;
  const uint8_t* dequant_ = nullptr;
  const uint8_t* source_ = nullptr;
  const uint8_t* activation_ = nullptr;
};

TEST_P(QuantBlocks32Test, DequantizesToLlamaCppValues) {
  std::vector<float> y(kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    dequantize_row(GetParam(), weight_ + r * row_size(), y.data(), kCols);
    EXPECT_EQ(0, std::memcmp(y.data(), floats(dequant_) + r * kCols, kCols * sizeof(float))) << "row " << r;
  }
}

TEST_P(QuantBlocks32Test, QuantizesToLlamaCppBytes) {
  std::vector<uint8_t> q(row_size());
  for (int64_t r = 0; r < kRows; ++r) {
    quantize_row(GetParam(), floats(source_) + r * kCols, q.data(), kCols);
    EXPECT_EQ(0, std::memcmp(q.data(), weight_ + r * row_size(), q.size())) << "row " << r;
  }
}

// The activation row quantized for this weight type, as ggml's block_q8_0 / block_q8_1 bytes,
// by the scalar twin and by every compiled SIMD target.
TEST_P(QuantBlocks32Test, QuantizesActivationsToLlamaCppBytes) {
  const DType t = GetParam();
  const std::vector<uint8_t> want = from_hex(json_.at("activation_quantized_hex").get<std::string>());
  const bool sums = detail::act_has_block_sums(t);
  std::vector<uint8_t> buffer(detail::acts_bytes(t, kCols, 1) + 64);
  uint8_t* aligned = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
  auto blocks = [&](const detail::QuantizedActs& a) {
    std::vector<uint8_t> bytes;
    auto push_fp16 = [&](float v) {
      const uint16_t h = fp32_to_fp16(v);
      bytes.push_back(static_cast<uint8_t>(h & 0xFF));
      bytes.push_back(static_cast<uint8_t>(h >> 8));
    };
    for (int64_t b = 0; b < a.blocks; ++b) {
      push_fp16(a.d[b]);
      if (sums) push_fp16(a.s[b]);
      for (int j = 0; j < 32; ++j) bytes.push_back(static_cast<uint8_t>(a.qs[32 * b + j]));
    }
    return bytes;
  };
  detail::MatmulJob job{t, nullptr, 0, kCols, 0, floats(activation_), 1, nullptr, {}};
  job.acts = detail::acts_layout(t, kCols, 1, aligned);
  detail::quantize_acts_reference(job, 0, 1);
  EXPECT_EQ(blocks(job.acts), want) << "scalar twin";
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::memset(aligned, 0, detail::acts_bytes(t, kCols, 1));
    detail::quantize_acts(job, 0, 1);
    EXPECT_EQ(blocks(job.acts), want) << hwy::TargetName(target);
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST_P(QuantBlocks32Test, MatrixVectorProductMatchesVecDot) {
  const std::vector<float> want = json_.at("vec_dot").get<std::vector<float>>();
  std::vector<float> y(kRows);
  matmul_reference(GetParam(), weight_, kRows, kCols, floats(activation_), 1, y.data());
  for (int64_t r = 0; r < kRows; ++r) EXPECT_NEAR(y[r], want[r], dot_tolerance(want[r])) << "scalar twin, row " << r;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    matmul(GetParam(), weight_, kRows, kCols, floats(activation_), 1, y.data(), nullptr);
    for (int64_t r = 0; r < kRows; ++r) {
      EXPECT_NEAR(y[r], want[r], dot_tolerance(want[r])) << hwy::TargetName(target) << ", row " << r;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantBlocks32Test,
                         ::testing::Values(DType::Q4_0, DType::Q8_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                           DType::IQ4_NL),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace ll::kernels
