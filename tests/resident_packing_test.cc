// --no-mmap repacks the matrices that are only multiplied where this machine's kernels read
// them faster so (kernels::pack_row_lanes): the logits of a prompt and of the steps after it
// are the same bits as from the mapped file, and the embedding (its rows are looked up; it is
// also the output head when tied) keeps the file's bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "exec/segment_executor.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_data.h"

namespace ll {
namespace {

// The logits after each of the prompt's last token and three steps after it, two threads.
std::vector<float> logits_of_a_short_generation(const model::Model& m) {
  exec::SegmentExecutor ex(m, model::all_units(m.hparams()), {.n_ctx = 64, .n_threads = 2});
  EXPECT_TRUE(ex.create_sequence(0).ok());
  const int64_t vocab = m.hparams().n_vocab;
  std::vector<int32_t> tokens(20);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(1 + (i * 37) % 250);
  std::vector<float> all, logits(static_cast<size_t>(vocab)), hidden;
  int64_t pos = 0;
  for (int64_t rows : {20, 1, 1, 1}) {
    hidden.assign(static_cast<size_t>(rows * m.hparams().n_embd), 0.0f);
    const Status st = ex.forward(0, pos, {tokens.data() + (pos < 20 ? 0 : pos % 20), static_cast<size_t>(rows)},
                                 hidden.data(), rows, logits.data());
    EXPECT_TRUE(st.ok()) << st.message();
    all.insert(all.end(), logits.begin(), logits.end());
    pos += rows;
  }
  return all;
}

TEST(ResidentPacking, LogitsEqualTheMappedFilesAndTheEmbeddingIsNotPacked) {
  int packed = 0;
  bool any_type_packs = false;
  for (const std::string preset : {"test-4l", "test-8l"}) {  // test-8l ties the output head
    for (const std::string type : {"q4_0", "q8_0", "q4_k_m"}) {
      SCOPED_TRACE(preset + " " + type);
      const std::string path = test::temp_path("packing-test-" + preset + "-" + type + ".gguf");
      if (!std::filesystem::exists(path)) {
        model::SynthOptions o{.preset = preset, .type = type,
                              .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
        ThreadPool pool(2);
        const Status s = model::write_synthetic_model(o, path, pool);
        ASSERT_TRUE(s.ok()) << s.message();
      }
      auto mapped = model::Model::load(path);
      ASSERT_TRUE(mapped.ok()) << mapped.error();
      model::LoadOptions copy;
      copy.mmap = false;
      auto resident = model::Model::load(path, copy);
      ASSERT_TRUE(resident.ok()) << resident.error();
      const model::Model& m = *resident.value();
      model::LlamaWeights weights = m.weights();
      for (const model::WeightRef* ref : model::bound_weights(m.arch(), m.hparams().n_layer, weights)) {
        any_type_packs = any_type_packs || kernels::packs_row_lanes(ref->type);
        if (ref->layout == kernels::WeightLayout::kRowLanes) {
          ++packed;
          EXPECT_NE(ref->tensor, weights.token_embd.tensor) << ref->tensor->name;
          EXPECT_TRUE(kernels::packs_row_lanes(ref->type)) << ref->tensor->name;
        } else {
          EXPECT_EQ(std::memcmp(ref->data, ref->tensor->data, ref->tensor->nbytes), 0) << ref->tensor->name;
        }
      }
      EXPECT_EQ(logits_of_a_short_generation(m), logits_of_a_short_generation(*mapped.value()));
    }
  }
  // Where a kernel reads a packed layout, its matrices were packed; nowhere else.
  EXPECT_EQ(packed > 0, any_type_packs);
}

}  // namespace
}  // namespace ll
