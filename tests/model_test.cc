// The Llama forward pass against llama2.c and llama.cpp references.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <sstream>

#include "exec/generate.h"
#include "exec/segment_executor.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"

namespace ll {
namespace {

using test::shared_data;

std::unique_ptr<model::Model> load(const std::string& rel, const std::string& tokenizer_rel = "") {
  model::LoadOptions o;
  if (!tokenizer_rel.empty()) o.tokenizer_path = shared_data(tokenizer_rel);
  auto m = model::Model::load(shared_data(rel), o);
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(m).value() : nullptr;
}

// "pos P token T" header then 512 floats, three times.
std::vector<std::vector<float>> reference_logits_260k() {
  std::istringstream in(test::read_text(shared_data("derived/stories260K/greedy_t0_n200.logits_pos0-2.txt")));
  std::vector<std::vector<float>> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("pos", 0) == 0) {
      out.emplace_back();
    } else if (!line.empty() && !out.empty()) {
      out.back().push_back(std::stof(line));
    }
  }
  return out;
}

std::string generate_text(model::Model& m, const exec::GenerateOptions& opts, int threads = 1) {
  exec::SegmentExecutor ex(m, model::all_units(m.hparams()), {.n_ctx = 512, .n_threads = threads, .kv_types = test::kReferenceKvTypes});
  auto tok = text::Tokenizer::create(m.vocab());
  EXPECT_TRUE(tok.ok());
  std::string text;
  auto r = exec::generate(ex, tok.value(), opts, [&](const std::string& s) { text += s; });
  EXPECT_TRUE(r.ok()) << r.error();
  return text;
}

exec::GenerateOptions greedy(int64_t n) {
  exec::GenerateOptions o;
  o.n_predict = n;
  o.sampling.temp = 0;
  return o;
}

class Stories260K : public ::testing::TestWithParam<const char*> {
 protected:
  std::unique_ptr<model::Model> model_ =
      std::string(GetParam()) == "gguf" ? load("models/stories260K/stories260K.gguf")
                                        : load("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin");
};

TEST_P(Stories260K, LogitsMatchLlama2cAtPositions0To2) {
  ASSERT_TRUE(model_);
  std::vector<std::vector<float>> ref;
  ASSERT_NO_FATAL_FAILURE(ref = reference_logits_260k());
  ASSERT_EQ(ref.size(), 3u);
  exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()), {.n_ctx = 64, .n_threads = 2, .kv_types = test::kReferenceKvTypes});
  ASSERT_TRUE(ex.create_sequence(0).ok());
  const int32_t tokens[3] = {1, 403, 407};
  std::vector<float> hidden(64), logits(512);
  for (int pos = 0; pos < 3; ++pos) {
    ASSERT_TRUE(ex.forward(0, pos, {&tokens[pos], 1}, hidden.data(), 1, logits.data()).ok());
    ASSERT_EQ(ref[pos].size(), 512u);
    float max_err = 0;
    for (int i = 0; i < 512; ++i) max_err = std::max(max_err, std::fabs(logits[i] - ref[pos][i]));
    EXPECT_LT(max_err, 1e-4f) << "position " << pos;
  }
}

TEST_P(Stories260K, PromptBatchEqualsTokenByToken) {
  ASSERT_TRUE(model_);
  exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()), {.n_ctx = 64, .n_threads = 2, .kv_types = test::kReferenceKvTypes});
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 300, 12};
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<float> hidden(64 * n), batch_logits(512 * n), one(512);
  ASSERT_TRUE(ex.create_sequence(0).ok());
  ASSERT_TRUE(ex.forward(0, 0, tokens, hidden.data(), n, batch_logits.data(), true).ok());
  ASSERT_TRUE(ex.create_sequence(1).ok());
  for (int64_t p = 0; p < n; ++p) {
    ASSERT_TRUE(ex.forward(1, p, {&tokens[p], 1}, hidden.data(), 1, one.data()).ok());
    for (int i = 0; i < 512; ++i) EXPECT_NEAR(one[i], batch_logits[p * 512 + i], 1e-4f) << "pos " << p;
  }
}

TEST_P(Stories260K, Greedy200TokensEqualLlama2c) {
  ASSERT_TRUE(model_);
  EXPECT_EQ(generate_text(*model_, greedy(200)), test::read_text(shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

TEST_P(Stories260K, Greedy200TokensEqualLlama2cWithTwoThreads) {
  ASSERT_TRUE(model_);
  EXPECT_EQ(generate_text(*model_, greedy(200), 2),
            test::read_text(shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

// --no-mmap: every bound weight is a copy outside the file's mapping, and the text is the same.
TEST(NoMmap, WeightsAreCopiedAndGreedy200TokensStillEqualLlama2c) {
  model::LoadOptions o;
  o.mmap = false;
  auto loaded = model::Model::load(shared_data("models/stories260K/stories260K.gguf"), o);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  model::Model& m = *loaded.value();
  const uint8_t* begin = m.file().base();
  const uint8_t* end = begin + m.file().file_size();
  model::LlamaWeights weights = m.weights();
  const auto refs = model::bound_weights(m.arch(), m.hparams().n_layer, weights);
  ASSERT_GT(refs.size(), 10u);
  for (const model::WeightRef* ref : refs) {
    EXPECT_TRUE(ref->data < begin || ref->data >= end) << ref->tensor->name << " still points into the file";
    EXPECT_EQ(std::memcmp(ref->data, ref->tensor->data, ref->tensor->nbytes), 0) << ref->tensor->name;
  }
  EXPECT_EQ(generate_text(m, greedy(200)), test::read_text(shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

// llama.cpp's -n -1 (until the end of the text or context) and -2 (until the context is full):
// in a context of 256, 256 tokens (the last one sampled from position 255), run.c's 256 steps.
TEST_P(Stories260K, GreedyUntilTheContextIsFullEqualsLlama2c) {
  ASSERT_TRUE(model_);
  for (int64_t n_predict : {-1, -2}) {
    SCOPED_TRACE(n_predict);
    exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()), {.n_ctx = 256, .n_threads = 1, .kv_types = test::kReferenceKvTypes});
    auto tok = text::Tokenizer::create(model_->vocab());
    ASSERT_TRUE(tok.ok());
    std::string text;
    auto r = exec::generate(ex, tok.value(), greedy(n_predict), [&](const std::string& s) { text += s; });
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.value().tokens.size(), 256u);
    EXPECT_EQ(text, test::read_text(shared_data("reference/stories260K/greedy_t0_n256.txt")));
  }
}

TEST(GenerateOptions, NPredictBelowMinus2IsRefused) {
  EXPECT_TRUE(exec::validate_n_predict(-2).ok());
  EXPECT_TRUE(exec::validate_n_predict(0).ok());
  EXPECT_EQ(exec::validate_n_predict(-3).message(),
            "n-predict -3 is below -2 (-1 = until the end of the text or context, -2 = until the context is full)");
}

// Seeded sampling reproduces run.c's text (temperature 1, top-p, xorshift RNG).
TEST_P(Stories260K, SeededSamplingEqualsLlama2c) {
  ASSERT_TRUE(model_);
  struct Case {
    const char* file;
    float top_p;
    uint64_t seed;
    int steps;
  } cases[] = {{"sample_t1_p0.9_s133742_n256.txt", 0.9f, 133742, 256},
               {"sample_t1_p1_s42_n200.txt", 1.0f, 42, 200},
               {"sample_t1_p0.95_s42_n200.txt", 0.95f, 42, 200}};
  for (const Case& c : cases) {
    std::string expected;
    ASSERT_NO_FATAL_FAILURE(expected = test::read_text(shared_data(std::string("reference/stories260K/") + c.file)));
    exec::GenerateOptions o;
    o.n_predict = c.steps;
    o.sampling = {.temp = 1.0f, .top_k = 0, .top_p = c.top_p, .min_p = 0, .repeat_penalty = 1, .seed = c.seed};
    EXPECT_EQ(generate_text(*model_, o), expected) << c.file;
  }
}

TEST_P(Stories260K, SeededSamplingWithPromptEqualsLlama2c) {
  ASSERT_TRUE(model_);
  std::string expected;
  ASSERT_NO_FATAL_FAILURE(
      expected = test::read_text(shared_data("reference/stories260K/sample_t1_p0.95_s42_n200_prompt.txt")));
  exec::GenerateOptions o;
  o.prompt = "There was a big";
  o.n_predict = 200 - 6 + 1;  // run.c counts the 6 prompt positions (BOS + 5) in its 200 steps
  o.sampling = {.temp = 1.0f, .top_k = 0, .top_p = 0.95f, .min_p = 0, .repeat_penalty = 1, .seed = 42};
  EXPECT_EQ(o.prompt + generate_text(*model_, o), expected);
}

INSTANTIATE_TEST_SUITE_P(BothFormats, Stories260K, ::testing::Values("gguf", "llama2c"));

TEST(TinyRandomLlama2, F16LogitsMatchLlamaCpp) {
  auto m = load("models/llama-2-tiny-random/llama-2-tiny-random.gguf");
  ASSERT_TRUE(m);
  std::vector<unsigned char> ref_bytes;
  ASSERT_NO_FATAL_FAILURE(ref_bytes = test::read_bytes(shared_data("derived/llama-2-tiny-random/logits_step0-1.f32")));
  ASSERT_EQ(ref_bytes.size(), 2u * 32000 * 4);
  std::vector<float> ref(2 * 32000);
  std::memcpy(ref.data(), ref_bytes.data(), ref_bytes.size());
  std::string meta_text;
  ASSERT_NO_FATAL_FAILURE(
      meta_text = test::read_text(shared_data("derived/llama-2-tiny-random/greedy_once_upon_a_time_n32.json")));
  auto meta = nlohmann::json::parse(meta_text);
  std::vector<int32_t> prompt = meta["prompt_ids"].get<std::vector<int32_t>>();
  int32_t next = meta["generated_ids"][0].get<int32_t>();

  exec::SegmentExecutor ex(*m, model::all_units(m->hparams()), {.n_ctx = 64, .n_threads = 2, .kv_types = test::kReferenceKvTypes});
  ASSERT_TRUE(ex.create_sequence(0).ok());
  std::vector<float> hidden(8 * prompt.size()), logits(32000);
  ASSERT_TRUE(ex.forward(0, 0, prompt, hidden.data(), prompt.size(), logits.data()).ok());
  auto max_err = [&](int step) {
    float e = 0;
    for (int i = 0; i < 32000; ++i) e = std::max(e, std::fabs(logits[i] - ref[step * 32000 + i]));
    return e;
  };
  EXPECT_LT(max_err(0), 2e-3f);
  EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), next);
  ASSERT_TRUE(ex.forward(0, prompt.size(), {&next, 1}, hidden.data(), 1, logits.data()).ok());
  EXPECT_LT(max_err(1), 2e-3f);
}

TEST(ModelErrors, UnknownArchitectureIsRefused) {
  ASSERT_TRUE(test::exists(shared_data("vocab/llamacpp/ggml-vocab-gpt-2.gguf")));
  auto m = model::Model::load(shared_data("vocab/llamacpp/ggml-vocab-gpt-2.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("architecture 'gpt2' is not supported"), std::string::npos) << m.error();
}

TEST(ModelErrors, VocabOnlyFileHasNoWeights) {
  ASSERT_TRUE(test::exists(shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")));
  auto m = model::Model::load(shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("missing tensor 'token_embd.weight'"), std::string::npos) << m.error();
}

TEST(ModelErrors, ContextOverflowIsAnError) {
  auto m = load("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(m);
  exec::SegmentExecutor ex(*m, model::all_units(m->hparams()), {.n_ctx = 4, .n_threads = 1});
  ASSERT_TRUE(ex.create_sequence(0).ok());
  std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  std::vector<float> hidden(64 * 5), logits(512);
  auto s = ex.forward(0, 0, tokens, hidden.data(), 5, logits.data());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("context full"), std::string::npos);
  int32_t bad = 9999;
  s = ex.forward(0, 0, {&bad, 1}, hidden.data(), 1, logits.data());
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace ll
