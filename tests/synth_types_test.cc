// `synth --type` with the 32-element block types: the model is written in the type, loads, and
// its logits follow those of the same weights in F32; a type whose blocks do not divide the
// preset's rows is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "exec/segment_executor.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_data.h"

namespace ll {
namespace {

model::SynthOptions options(const std::string& type) {
  return {.preset = "test-4l",
          .type = type,
          .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf"),
          .n_layer_override = 1};
}

// Logits of the last of a few prompt tokens, then of one more token after them.
std::vector<float> logits_of(const std::string& path) {
  auto m = model::Model::load(path, {});
  EXPECT_TRUE(m.ok()) << m.error();
  if (!m.ok()) return {};
  const model::Model& model = **m;
  exec::SegmentExecutor ex(model, model::all_units(model.hparams()), {.n_ctx = 16, .n_threads = 2});
  EXPECT_TRUE(ex.create_sequence(0).ok());
  const int64_t n_vocab = model.hparams().n_vocab, n_embd = model.hparams().n_embd;
  const std::vector<int32_t> prompt = {1, 450, 4996, 17354};
  std::vector<float> hidden(n_embd * prompt.size()), logits(2 * n_vocab);
  EXPECT_TRUE(ex.forward(0, 0, prompt, hidden.data(), static_cast<int64_t>(prompt.size()), logits.data()).ok());
  const int32_t next = 1701;
  EXPECT_TRUE(ex.forward(0, static_cast<int64_t>(prompt.size()), {&next, 1}, hidden.data(), 1,
                         logits.data() + n_vocab)
                  .ok());
  return logits;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

class SynthTypeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SynthTypeTest, WritesTheTypeAndFollowsF32) {
  ThreadPool pool(2);
  static const std::string f32_path = [&] {
    const std::string path = test::temp_path("synth-f32.gguf");
    const Status s = model::write_synthetic_model(options("f32"), path, pool);
    EXPECT_TRUE(s.ok()) << s.message();
    return path;
  }();
  static const std::vector<float> f32_logits = logits_of(f32_path);
  ASSERT_FALSE(f32_logits.empty());

  const std::string path = test::temp_path("synth-" + GetParam() + ".gguf");
  const Status s = model::write_synthetic_model(options(GetParam()), path, pool);
  ASSERT_TRUE(s.ok()) << s.message();
  auto file = gguf::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"}) {
    const gguf::TensorInfo* t = (*file)->find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, *dtype_from_name(GetParam())) << name;
  }
  const std::vector<float> logits = logits_of(path);
  ASSERT_EQ(logits.size(), f32_logits.size());
  // Random weights give logits of a few units; 4- and 5-bit weights keep their direction.
  EXPECT_GT(cosine(logits, f32_logits), 0.98) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Types, SynthTypeTest, ::testing::Values("q4_1", "q5_0", "q5_1", "iq4_nl"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// general.file_type in llama.cpp's llama_ftype numbering, which is not the tensor types': tools
// that read it (llama-bench's model column) name the file's type right.
TEST(SynthFileTypeTest, NamesTheTypeAsLlamaCppNumbersIt) {
  ThreadPool pool(2);
  for (const auto& [type, file_type] : std::vector<std::pair<std::string, uint64_t>>{
           {"f32", 0}, {"q4_0", 2}, {"q8_0", 7}, {"q5_0", 8}, {"q6_k", 18}, {"q4_k_m", 15}, {"q3_k_m", 12}}) {
    const std::string path = test::temp_path("synth-ftype-" + type + ".gguf");
    const Status s = model::write_synthetic_model(options(type), path, pool);
    ASSERT_TRUE(s.ok()) << s.message();
    auto file = gguf::GgufFile::open(path);
    ASSERT_TRUE(file.ok()) << file.status().message();
    auto written = (*file)->get_uint("general.file_type");
    ASSERT_TRUE(written.ok()) << written.status().message();
    EXPECT_EQ(written.value(), file_type) << type;
  }
}

// As llama.cpp's quantizer: rows that are not whole 256-element blocks take a 32-element type.
TEST(SynthTypeFallbackTest, RowsOfPartialSuperBlocksTakeTheSmallBlockTypeOfLlamaCpp) {
  ThreadPool pool(1);
  const std::string path = test::temp_path("synth-q4_k.gguf");
  // test-4l's rows have 128 or 384 elements; Q4_K blocks hold 256.
  const Status s = model::write_synthetic_model(options("q4_k"), path, pool);
  ASSERT_TRUE(s.ok()) << s.message();
  auto f = gguf::GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(f.value()->find_tensor("token_embd.weight")->type, DType::Q5_0);
  EXPECT_EQ(f.value()->find_tensor("blk.0.ffn_down.weight")->type, DType::Q5_0);
}

}  // namespace
}  // namespace ll
