// A model file with an out-of-range hyper-parameter or a non-finite weight is refused with an
// error naming the key or tensor; the files are stories260K rewritten with one value changed.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "exec/generate.h"
#include "exec/segment_executor.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// stories260K.gguf with `set_keys` applied over its metadata and, when `tensor` is named, the
// float at `index` of that F32 tensor replaced by `value`; returns the path of the copy.
std::string rewritten(const std::function<void(gguf::GgufWriter&)>& set_keys, const std::string& tensor = "",
                      size_t index = 0, float value = 0) {
  auto f = gguf::GgufFile::open(test::shared_data("models/stories260K/stories260K.gguf"));
  EXPECT_TRUE(f.ok()) << f.error();
  if (!f.ok()) return "";
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f.value()->metadata()) w.copy_kv(kv);
  set_keys(w);
  bool found = tensor.empty();
  for (const gguf::TensorInfo& t : f.value()->tensors()) {
    std::vector<uint8_t> bytes(t.data, t.data + t.nbytes);
    if (t.name == tensor) {
      EXPECT_EQ(t.type, DType::F32);
      EXPECT_LT(index, static_cast<size_t>(t.n_elements));
      std::memcpy(bytes.data() + index * sizeof(float), &value, sizeof value);
      found = true;
    }
    w.add_tensor(t.name, t.type, t.dims, bytes.data(), bytes.size());
  }
  EXPECT_TRUE(found) << tensor;
  const std::string path = test::temp_path("rewritten.gguf");
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

std::string load_error(const std::string& path) {
  auto m = model::Model::load(path);
  return m.ok() ? "loaded" : m.error();
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

TEST(ModelFileValidation, TheUnchangedCopyLoads) {
  EXPECT_EQ(load_error(rewritten([](gguf::GgufWriter&) {})), "loaded");
}

TEST(ModelFileValidation, RefusesAContextLengthOf2To63) {
  const std::string e =
      load_error(rewritten([](gguf::GgufWriter& w) { w.set_uint64("llama.context_length", uint64_t{1} << 63); }));
  expect_contains(e, "llama.context_length = 9223372036854775808 is out of range (1..16777216)");
}

TEST(ModelFileValidation, RefusesANonFiniteOrZeroEpsilon) {
  for (float eps : {kNaN, INFINITY, 0.0f, -1e-5f}) {
    SCOPED_TRACE(eps);
    const std::string e =
        load_error(rewritten([&](gguf::GgufWriter& w) { w.set_float32("llama.attention.layer_norm_rms_epsilon", eps); }));
    expect_contains(e, "llama.attention.layer_norm_rms_epsilon = ");
    expect_contains(e, "is out of range (a finite number above 0)");
  }
}

TEST(ModelFileValidation, RefusesValuesNotAsWideAsKeysAndNonPositiveSoftCapping) {
  expect_contains(load_error(rewritten([](gguf::GgufWriter& w) { w.set_uint32("llama.attention.value_length", 7); })),
                  "llama.attention.value_length = 7 differs from the key length 8");
  for (float cap : {kNaN, 0.0f, -20.0f}) {
    SCOPED_TRACE(cap);
    expect_contains(load_error(rewritten([&](gguf::GgufWriter& w) { w.set_float32("llama.attn_logit_softcapping", cap); })),
                    "llama.attn_logit_softcapping = ");
  }
}

TEST(ModelFileValidation, RefusesOutOfRangeDimensionsAndRope) {
  expect_contains(load_error(rewritten([](gguf::GgufWriter& w) { w.set_uint32("llama.block_count", 0); })),
                  "llama.block_count = 0 is out of range (1..4096)");
  expect_contains(load_error(rewritten([](gguf::GgufWriter& w) { w.set_uint32("llama.attention.head_count_kv", 9); })),
                  "llama.attention.head_count_kv = 9 is out of range (1..8)");
  expect_contains(load_error(rewritten([](gguf::GgufWriter& w) { w.set_float32("llama.rope.freq_base", kNaN); })),
                  "llama.rope.freq_base = nan is out of range (a finite number above 0)");
}

TEST(ModelFileValidation, RefusesANaNInANormWeight) {
  expect_contains(load_error(rewritten([](gguf::GgufWriter&) {}, "blk.1.ffn_norm.weight", 3, kNaN)),
                  "tensor 'blk.1.ffn_norm.weight' holds nan at index 3; the file is damaged");
}

TEST(ModelFileValidation, GenerationRefusesNonFiniteLogits) {
  // The output matrix is too large to scan at load; a NaN in it reaches the logits.
  auto m = model::Model::load(rewritten([](gguf::GgufWriter&) {}, "output.weight", 5, kNaN));
  ASSERT_TRUE(m.ok()) << m.error();
  exec::SegmentExecutor ex(*m.value(), model::all_units(m.value()->hparams()), {.n_ctx = 64, .n_threads = 1});
  auto tok = text::Tokenizer::create(m.value()->vocab());
  ASSERT_TRUE(tok.ok());
  exec::GenerateOptions o;
  o.n_predict = 8;
  o.sampling.temp = 0;
  auto r = exec::generate(ex, tok.value(), o, [](const std::string&) {});
  ASSERT_FALSE(r.ok());
  expect_contains(r.error(), "the model computed a non-finite logit (nan) at position 0");
}

}  // namespace
}  // namespace ll
