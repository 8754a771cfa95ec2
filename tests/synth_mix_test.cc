// `synth --type` with the new K-quant types and llama.cpp's Q3_K_M / Q4_K_M / Q5_K_M mixes: the
// tensors get the types llama_tensor_get_type gives them, and the mixed models load and
// generate what the same weights in F32 generate, up to the quantization error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <utility>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "exec/segment_executor.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/units.h"
#include "test_data.h"

namespace ll {
namespace {

// test-8l: 8 layers, n_embd 256, n_ff 768 (every row a whole number of 256-element blocks).
Result<std::string> synthetic_model(const std::string& type) {
  const std::string path = test::temp_path("test-8l-" + type + ".gguf");
  if (!std::filesystem::exists(path)) {
    model::SynthOptions o{.preset = "test-8l", .type = type,
                          .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
    ThreadPool pool(2);
    LL_RETURN_IF_ERROR(model::write_synthetic_model(o, path, pool));
  }
  return path;
}

std::map<std::string, DType> tensor_types(const std::string& path) {
  std::map<std::string, DType> types;
  auto file = gguf::GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << file.error();
  if (!file.ok()) return types;
  for (const auto& t : file.value()->tensors()) types[t.name] = t.type;
  return types;
}

// Logits after a prompt, then after each of 8 greedy steps, and the greedy tokens.
struct Generation {
  std::vector<std::vector<float>> logits;
  std::vector<int32_t> tokens;
};

Generation generate(const std::string& path) {
  Generation g;
  auto m = model::Model::load(path);
  EXPECT_TRUE(m.ok()) << m.error();
  if (!m.ok()) return g;
  exec::SegmentExecutor ex(*m.value(), model::all_units(m.value()->hparams()), {.n_ctx = 64, .n_threads = 2});
  EXPECT_TRUE(ex.create_sequence(1).ok());
  std::vector<int32_t> tokens = {1, 15043, 3186};
  std::vector<float> hidden(tokens.size() * ex.n_embd()), logits(ex.n_vocab());
  int64_t pos = 0;
  for (int step = 0; step < 9; ++step) {
    Status s = ex.forward(1, pos, tokens, hidden.data(), static_cast<int64_t>(tokens.size()), logits.data());
    EXPECT_TRUE(s.ok()) << s.message();
    pos += static_cast<int64_t>(tokens.size());
    g.logits.push_back(logits);
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    g.tokens.push_back(next);
    tokens = {next};
  }
  return g;
}

// Cosine similarity of two logit vectors.
double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// Q4_K_M and Q5_K_M share llama.cpp's rule; their base types differ.
TEST(SynthMix, Q4_K_MAndQ5_K_MTypesFollowLlamaCpp) {
  for (const auto& [name, base] : {std::pair{"q4_k_m", DType::Q4_K}, std::pair{"q5_k_m", DType::Q5_K}}) {
    SCOPED_TRACE(name);
    auto path = synthetic_model(name);
    ASSERT_TRUE(path.ok()) << path.error();
    auto types = tensor_types(path.value());
    // test-8l ties its output head to token_embd, which therefore takes the head's type.
    EXPECT_EQ(types.count("output.weight"), 0u);
    EXPECT_EQ(types["token_embd.weight"], DType::Q6_K);
    // use_more_bits(i, 8): layers 0, 3, 6, 7.
    for (int layer = 0; layer < 8; ++layer) {
      const DType more = layer == 0 || layer == 3 || layer >= 6 ? DType::Q6_K : base;
      EXPECT_EQ(types[fmt::format("blk.{}.attn_v.weight", layer)], more) << layer;
      EXPECT_EQ(types[fmt::format("blk.{}.ffn_down.weight", layer)], more) << layer;
      EXPECT_EQ(types[fmt::format("blk.{}.attn_q.weight", layer)], base) << layer;
      EXPECT_EQ(types[fmt::format("blk.{}.attn_output.weight", layer)], base) << layer;
      EXPECT_EQ(types[fmt::format("blk.{}.ffn_up.weight", layer)], base) << layer;
      EXPECT_EQ(types[fmt::format("blk.{}.attn_norm.weight", layer)], DType::F32) << layer;
    }
  }
}

TEST(SynthMix, Q3_K_MTypesFollowLlamaCpp) {
  auto path = synthetic_model("q3_k_m");
  ASSERT_TRUE(path.ok()) << path.error();
  auto types = tensor_types(path.value());
  EXPECT_EQ(types.count("output.weight"), 0u);
  EXPECT_EQ(types["token_embd.weight"], DType::Q6_K);
  for (int layer = 0; layer < 8; ++layer) {
    EXPECT_EQ(types[fmt::format("blk.{}.attn_v.weight", layer)], layer < 2 ? DType::Q5_K : DType::Q4_K) << layer;
    // Q5_K for the first n_layer / 16 layers: none of 8.
    EXPECT_EQ(types[fmt::format("blk.{}.ffn_down.weight", layer)], DType::Q4_K) << layer;
    EXPECT_EQ(types[fmt::format("blk.{}.attn_output.weight", layer)], DType::Q4_K) << layer;
    EXPECT_EQ(types[fmt::format("blk.{}.attn_k.weight", layer)], DType::Q3_K) << layer;
    EXPECT_EQ(types[fmt::format("blk.{}.ffn_gate.weight", layer)], DType::Q3_K) << layer;
  }
}

// The same seeded weights as F32 and in each mix: the logits after the prompt keep their
// direction within the precision of the mix (measured: cosine 0.99+ for Q5_K_M, 0.9+ for
// Q3_K_M), and every step of the generation gives finite logits.
TEST(SynthMix, MixedModelsGenerateLikeF32) {
  auto f32 = synthetic_model("f32");
  ASSERT_TRUE(f32.ok()) << f32.error();
  const Generation want = generate(f32.value());
  ASSERT_EQ(want.logits.size(), 9u);
  const struct {
    const char* type;
    double min_cosine;
  } cases[] = {{"q5_k_m", 0.99}, {"q3_k_m", 0.9}};
  for (const auto& c : cases) {
    auto path = synthetic_model(c.type);
    ASSERT_TRUE(path.ok()) << path.error();
    const Generation got = generate(path.value());
    ASSERT_EQ(got.logits.size(), want.logits.size()) << c.type;
    EXPECT_GE(cosine(got.logits[0], want.logits[0]), c.min_cosine) << c.type;
    for (const auto& l : got.logits) {
      for (float v : l) ASSERT_TRUE(std::isfinite(v)) << c.type;
    }
  }
}

}  // namespace
}  // namespace ll
