// A prompt computed in chunks (as the pipeline sends it, Step.prefill_only) against one pass:
// the logits after its last token, for chunk sizes that divide the prompt and that do not. A few
// tokens' attention is shared out by chunks of positions, a prompt's by tokens: both give the
// same bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "exec/segment_executor.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_data.h"

namespace ll {
namespace {

// The logits after `prompt`, computed in chunks of `chunk` tokens.
std::vector<float> logits_after(const model::Model& m, const std::vector<int32_t>& prompt, int64_t chunk,
                                int threads = 1) {
  exec::SegmentExecutor ex(m, model::all_units(m.hparams()), {.n_ctx = 512, .n_threads = threads});
  EXPECT_TRUE(ex.create_sequence(0).ok());
  std::vector<float> hidden, logits(static_cast<size_t>(m.hparams().n_vocab));
  const int64_t n = static_cast<int64_t>(prompt.size());
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t rows = std::min(chunk, n - begin);
    hidden.assign(static_cast<size_t>(rows * m.hparams().n_embd), 0.0f);
    const Status st = ex.forward(0, begin, {prompt.data() + begin, static_cast<size_t>(rows)}, hidden.data(), rows,
                                 logits.data());
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return logits;
}

void expect_chunks_match_one_pass(const std::string& path) {
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<int32_t> prompt(45);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + (i * 37) % 250);
  const std::vector<float> whole = logits_after(*m.value(), prompt, 45);
  for (int64_t chunk : {1, 7, 16, 32}) {
    const std::vector<float> chunked = logits_after(*m.value(), prompt, chunk);
    float worst = 0;
    for (size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, std::fabs(whole[i] - chunked[i]));
    EXPECT_EQ(chunked, whole) << path << ", chunks of " << chunk << ": largest difference " << worst;
  }
}

// 500 positions: the attention of the last tokens is two chunks of positions (256 and the rest),
// on two threads.
TEST(ChunkedPrefill, Stories260KLogitsAfterALongPromptInChunksEqualOnePassOnTwoThreads) {
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<int32_t> prompt(500);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(1 + (i * 37) % 500);
  const std::vector<float> whole = logits_after(*m.value(), prompt, 500, 2);
  for (int64_t chunk : {1, 3, 100}) EXPECT_EQ(logits_after(*m.value(), prompt, chunk, 2), whole) << "chunks of " << chunk;
}

TEST(ChunkedPrefill, Stories260KLogitsAfterAPromptInChunksEqualOnePass) {
  expect_chunks_match_one_pass(test::shared_data("models/stories260K/stories260K.gguf"));
}

TEST(ChunkedPrefill, TinyRandomLlamaLogitsAfterAPromptInChunksEqualOnePass) {
  expect_chunks_match_one_pass(test::shared_data("models/llama-2-tiny-random/llama-2-tiny-random.gguf"));
}

// The quantized weights' kernels (the prompt's rows quantized for the dot products).
TEST(ChunkedPrefill, QuantizedSyntheticModelsLogitsAfterAPromptInChunksEqualOnePass) {
  for (const std::string type : {"q4_0", "q4_k_m"}) {
    const std::string path = test::temp_path("chunked-test-4l-" + type + ".gguf");
    if (!std::filesystem::exists(path)) {
      model::SynthOptions o{.preset = "test-4l", .type = type,
                            .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
      ThreadPool pool(2);
      const Status s = model::write_synthetic_model(o, path, pool);
      ASSERT_TRUE(s.ok()) << s.message();
    }
    expect_chunks_match_one_pass(path);
  }
}

}  // namespace
}  // namespace ll
