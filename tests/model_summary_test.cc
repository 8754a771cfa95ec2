// Counting a model file's tensors per type and its parameters.
#include <gtest/gtest.h>

#include "model/model.h"
#include "model/summary.h"
#include "test_data.h"

namespace ll::model {
namespace {

std::unique_ptr<Model> load(const std::string& rel) {
  auto m = Model::load(test::shared_data(rel));
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(m).value() : nullptr;
}

TEST(ModelSummary, Stories260KIsAllF32) {
  auto m = load("models/stories260K/stories260K.gguf");
  ASSERT_NE(m, nullptr);
  const ModelSummary s = summarize(*m);
  ASSERT_EQ(s.by_type.size(), 1u);
  const TensorTypeTotals& f32 = s.by_type.at("F32");
  EXPECT_EQ(f32.tensors, 48);
  // 512x64 embedding and output, 5 layers of 64x64 q/o, 64x32 k/v, 3x 64x172 FFN and two norms, the final norm.
  EXPECT_EQ(s.n_params, 292800);
  EXPECT_EQ(f32.bytes, 292800u * 4);
  EXPECT_EQ(f32.bytes, m->weight_bytes());
}

TEST(ModelSummary, CountsEachTypeApart) {
  auto m = load("models/llama-2-tiny-random/llama-2-tiny-random.gguf");
  ASSERT_NE(m, nullptr);
  const ModelSummary s = summarize(*m);
  ASSERT_EQ(s.by_type.size(), 2u);
  // The matrices are F16, the three norm vectors of 8 F32.
  EXPECT_EQ(s.by_type.at("F16").tensors, 9);
  EXPECT_EQ(s.by_type.at("F16").bytes, 513024u * 2);
  EXPECT_EQ(s.by_type.at("F32").tensors, 3);
  EXPECT_EQ(s.by_type.at("F32").bytes, 3u * 8 * 4);
  EXPECT_EQ(s.n_params, 513024 + 24);
  EXPECT_EQ(s.by_type.begin()->first, "F16");  // printed in name order
}

}  // namespace
}  // namespace ll::model
