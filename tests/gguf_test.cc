// GGUF reader on the shared models and vocabularies, and writer round trips.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "test_data.h"

namespace ll::gguf {
namespace {

std::unique_ptr<GgufFile> open_shared(const std::string& relative) {
  auto r = GgufFile::open(test::shared_data(relative));
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Every tensor of a parsed file lies inside it, aligned, with the size its type and dims imply.
void expect_tensors_consistent(const GgufFile& f) {
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    EXPECT_EQ(t.data, f.base() + f.data_offset() + t.offset) << t.name;
    EXPECT_LE(f.data_offset() + t.offset + t.nbytes, f.file_size()) << t.name;
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    EXPECT_EQ(t.n_elements, n) << t.name;
    EXPECT_EQ(static_cast<int64_t>(t.nbytes), row_bytes(t.type, t.n_elements)) << t.name;
    EXPECT_EQ(f.find_tensor(t.name), &t);
  }
}

TEST(GgufFile, Stories260K) {
  auto f = open_shared("models/stories260K/stories260K.gguf");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ(f->metadata().size(), 19u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset(), 14176u);
  EXPECT_EQ(f->file_size(), 1185376u);
  EXPECT_EQ(f->metadata().front().key, "tokenizer.ggml.tokens");  // file order is kept

  EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f->get_uint("llama.block_count").value(), 5u);
  EXPECT_EQ(f->get_uint("llama.context_length").value(), 2048u);
  EXPECT_EQ(f->get_uint("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f->get_uint("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv").value(), 4);
  EXPECT_EQ(f->get_uint("llama.rope.dimension_count").value(), 8u);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("llama.attention.layer_norm_rms_epsilon").value()), 1e-5f);
  EXPECT_EQ(f->get_uint("tokenizer.ggml.seperator_token_id").value(), 4294967295u);
  EXPECT_EQ(f->find("llama.block_count")->type, ValueType::U32);

  auto tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error();
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
  EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores")->size(), 512u);
  auto types = f->get_int_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.error();
  EXPECT_EQ((*types)[0], 2);  // unknown
  EXPECT_EQ((*types)[1], 3);  // control
  EXPECT_EQ((*types)[3], 6);  // byte
  EXPECT_EQ((*types)[300], 1);

  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, DType::F32);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb->offset, 0u);
  EXPECT_EQ(emb->nbytes, 131072u);
  const TensorInfo* k = f->find_tensor("blk.4.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->dims, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(f->find_tensor("blk.2.ffn_down.weight")->dims, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(f->find_tensor("output_norm.weight")->dims, (std::vector<int64_t>{64}));
  EXPECT_EQ(f->find_tensor("blk.5.attn_q.weight"), nullptr);
  for (const TensorInfo& t : f->tensors()) EXPECT_EQ(t.type, DType::F32) << t.name;
  // The classifier is stored separately but equals the embedding.
  const TensorInfo* out = f->find_tensor("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(std::memcmp(out->data, emb->data, emb->nbytes), 0);
  expect_tensors_consistent(*f);
}

TEST(GgufFile, GetterErrorsNameFileAndKey) {
  const std::string path = test::shared_data("models/stories260K/stories260K.gguf");
  auto f = open_shared("models/stories260K/stories260K.gguf");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->get_uint("general.architecture").error(),
            path + ": key 'general.architecture' is a string, expected an integer");
  EXPECT_EQ(f->get_uint("llama.nope").error(), path + ": missing key 'llama.nope'");
  EXPECT_EQ(f->get_string("llama.block_count").error(), path + ": key 'llama.block_count' is a u32, expected a string");
  EXPECT_EQ(f->get_bool("llama.attention.layer_norm_rms_epsilon").error(),
            path + ": key 'llama.attention.layer_norm_rms_epsilon' is an f32, expected a bool");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.scores").error(),
            path + ": key 'tokenizer.ggml.scores' is an array of f32, expected an array of string");
  EXPECT_FALSE(f->get_int_array("tokenizer.ggml.tokens").ok());
  EXPECT_FALSE(f->get_float_array("tokenizer.ggml.token_type").ok());
  EXPECT_FALSE(f->get_float("general.name").ok());
  EXPECT_DOUBLE_EQ(f->get_float("llama.block_count").value(), 5.0);  // integers are accepted as numbers

  EXPECT_EQ(f->get_uint_or("llama.expert_count", 7).value(), 7u);
  EXPECT_EQ(f->get_uint_or("llama.block_count", 7).value(), 5u);
  EXPECT_FALSE(f->get_uint_or("general.name", 7).ok());  // present with the wrong type
  EXPECT_DOUBLE_EQ(f->get_float_or("llama.rope.freq_base", 10000.0).value(), 10000.0);
  EXPECT_TRUE(f->get_bool_or("tokenizer.ggml.add_bos_token", true).value());
  EXPECT_EQ(f->get_string_or("tokenizer.ggml.pre", "default").value(), "default");
  EXPECT_EQ(f->get_string_or("general.name", "x").value(), "llama");
}

TEST(GgufFile, LlamaTinyRandomF16) {
  auto f = open_shared("models/llama-2-tiny-random/llama-2-tiny-random.gguf");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 12u);
  EXPECT_EQ(f->metadata().size(), 18u);
  EXPECT_EQ(f->get_uint("general.file_type").value(), 1u);
  EXPECT_EQ(f->get_uint("llama.embedding_length").value(), 8u);
  EXPECT_EQ(f->get_uint("llama.block_count").value(), 1u);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens")->size(), 32000u);
  for (const TensorInfo& t : f->tensors()) {
    const bool norm = t.dims.size() == 1;
    EXPECT_EQ(t.type, norm ? DType::F32 : DType::F16) << t.name;
  }
  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{8, 32000}));
  EXPECT_EQ(emb->nbytes, 8u * 32000 * 2);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->dims, (std::vector<int64_t>{32, 8}));
  expect_tensors_consistent(*f);
}

struct VocabCase {
  const char* file;
  const char* model;
  size_t n_tokens;
  size_t n_merges;  // 0: SPM, no merges
  int token_id;     // a token of "Hello world" (see vocab/*.out)
  const char* token;
};

TEST(GgufFile, VocabOnlyFiles) {
  const VocabCase cases[] = {
      {"ggml-vocab-llama-spm.gguf", "llama", 32000, 0, 15043, "\xE2\x96\x81Hello"},
      {"ggml-vocab-phi-3.gguf", "llama", 32064, 0, 15043, "\xE2\x96\x81Hello"},
      {"ggml-vocab-gpt-2.gguf", "gpt2", 50257, 50000, 995, "\xC4\xA0world"},
      {"ggml-vocab-falcon.gguf", "gpt2", 65024, 64784, 9856, "Hello"},
      {"ggml-vocab-starcoder.gguf", "gpt2", 49152, 48872, 8302, "Hello"},
  };
  for (const VocabCase& c : cases) {
    SCOPED_TRACE(c.file);
    auto f = open_shared(std::string("vocab/llamacpp/") + c.file);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_TRUE(f->tensors().empty());
    EXPECT_EQ(f->get_string("tokenizer.ggml.model").value(), c.model);
    auto tokens = f->get_string_array("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.ok()) << tokens.error();
    ASSERT_EQ(tokens->size(), c.n_tokens);
    EXPECT_EQ((*tokens)[c.token_id], c.token);
    EXPECT_EQ(f->get_int_array("tokenizer.ggml.token_type")->size(), c.n_tokens);
    if (c.n_merges > 0) {
      EXPECT_EQ(f->get_string_array("tokenizer.ggml.merges")->size(), c.n_merges);
    } else {
      EXPECT_EQ(f->get_float_array("tokenizer.ggml.scores")->size(), c.n_tokens);
    }
  }
  auto spm = open_shared("vocab/llamacpp/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(spm, nullptr);
  EXPECT_TRUE(spm->get_bool("tokenizer.ggml.add_bos_token").value());
  EXPECT_FALSE(spm->get_bool("tokenizer.ggml.add_eos_token").value());
  EXPECT_EQ(spm->get_string("tokenizer.ggml.pre").value(), "default");
}

// Copying every kv and tensor of a file written by llama.cpp reproduces it byte for byte.
TEST(GgufWriter, CopyReproducesLlamaCppFiles) {
  for (const char* rel :
       {"models/stories260K/stories260K.gguf", "models/llama-2-tiny-random/llama-2-tiny-random.gguf"}) {
    SCOPED_TRACE(rel);
    auto f = open_shared(rel);
    ASSERT_NE(f, nullptr);
    GgufWriter w;
    for (const KeyValue& kv : f->metadata()) w.copy_kv(kv);
    for (const TensorInfo& t : f->tensors()) w.add_tensor_ref(t.name, t.type, t.dims, t.data, t.nbytes);
    const std::vector<uint8_t> bytes = w.to_bytes();
    std::vector<unsigned char> original;
    ASSERT_NO_FATAL_FAILURE(original = test::read_bytes(test::shared_data(rel)));
    ASSERT_EQ(bytes.size(), original.size());
    EXPECT_TRUE(bytes == std::vector<uint8_t>(original.begin(), original.end()));
  }
}

// A KeyValue for copy_kv, for the value types the typed setters do not cover.
template <typename T>
KeyValue scalar(std::string key, ValueType type, T v) {
  KeyValue kv;
  kv.key = std::move(key);
  kv.type = type;
  kv.value = v;
  return kv;
}

KeyValue array(std::string key, ValueType elem, const void* data, uint64_t count) {
  KeyValue kv;
  kv.key = std::move(key);
  kv.type = ValueType::ARRAY;
  kv.value = ArrayValue{elem, count, static_cast<const uint8_t*>(data), {}};
  return kv;
}

TEST(GgufWriter, RoundTripEveryValueType) {
  const uint8_t u8s[] = {0, 7, 255};
  const int8_t i8s[] = {-128, 0, 127};
  const uint16_t u16s[] = {1, 65535};
  const int16_t i16s[] = {-32768, 5};
  const uint32_t u32s[] = {4000000000u};
  const uint64_t u64s[] = {1, UINT64_MAX};
  const int64_t i64s[] = {INT64_MIN, -1, INT64_MAX};
  const double f64s[] = {3.25, -1e300};
  const uint8_t bools[] = {1, 0, 1};

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_uint32("a.u32", 123456789);
  w.set_int32("a.i32", -42);
  w.set_uint64("a.u64", uint64_t{1} << 40);
  w.set_float32("a.f32", 0.5f);
  w.set_bool("a.bool", true);
  w.set_string("a.empty_string", "");
  w.set_string_array("a.strings", {"\xE2\x96\x81hi", "", "<0x0A>"});
  w.set_float32_array("a.f32s", {1.0f, -2.5f, 1e-7f});
  w.set_int32_array("a.i32s", {-1, 0, 2147483647});
  w.set_int32_array("a.empty", {});
  w.copy_kv(scalar("b.u8", ValueType::U8, uint64_t{200}));
  w.copy_kv(scalar("b.i8", ValueType::I8, int64_t{-100}));
  w.copy_kv(scalar("b.u16", ValueType::U16, uint64_t{60000}));
  w.copy_kv(scalar("b.i16", ValueType::I16, int64_t{-30000}));
  w.copy_kv(scalar("b.i64", ValueType::I64, int64_t{INT64_MIN}));
  w.copy_kv(scalar("b.f64", ValueType::F64, 2.718281828459045));
  w.copy_kv(scalar("b.bool", ValueType::BOOL, false));
  w.copy_kv(array("c.u8", ValueType::U8, u8s, 3));
  w.copy_kv(array("c.i8", ValueType::I8, i8s, 3));
  w.copy_kv(array("c.u16", ValueType::U16, u16s, 2));
  w.copy_kv(array("c.i16", ValueType::I16, i16s, 2));
  w.copy_kv(array("c.u32", ValueType::U32, u32s, 1));
  w.copy_kv(array("c.u64", ValueType::U64, u64s, 2));
  w.copy_kv(array("c.i64", ValueType::I64, i64s, 3));
  w.copy_kv(array("c.f64", ValueType::F64, f64s, 2));
  w.copy_kv(array("c.bool", ValueType::BOOL, bools, 3));

  std::vector<float> f32(6);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = 0.25f * static_cast<float>(i);
  std::vector<uint8_t> f16(2 * 5, 0x3c), q8(34 * 2);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7);
  w.add_tensor("t.f32", DType::F32, {3, 2}, f32.data(), f32.size() * 4);
  w.add_tensor_ref("t.f16", DType::F16, {5}, f16.data(), f16.size());
  w.add_tensor("t.q8_0", DType::Q8_0, {32, 1, 2}, q8.data(), q8.size());

  const std::vector<uint8_t> bytes = w.to_bytes();
  auto r = GgufFile::from_bytes(bytes, "round.gguf");
  ASSERT_TRUE(r.ok()) << r.error();
  const GgufFile& f = **r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);

  // Re-encoding what was read gives the same image: every kv kept its exact type and value.
  GgufWriter again;
  for (const KeyValue& kv : f.metadata()) again.copy_kv(kv);
  for (const TensorInfo& t : f.tensors()) again.add_tensor_ref(t.name, t.type, t.dims, t.data, t.nbytes);
  EXPECT_TRUE(again.to_bytes() == bytes);

  ASSERT_EQ(f.metadata().size(), 27u);
  EXPECT_EQ(f.get_uint("a.u32").value(), 123456789u);
  EXPECT_EQ(f.get_int("a.i32").value(), -42);
  EXPECT_EQ(f.get_uint("a.u64").value(), uint64_t{1} << 40);
  EXPECT_EQ(f.get_float("a.f32").value(), 0.5);
  EXPECT_TRUE(f.get_bool("a.bool").value());
  EXPECT_EQ(f.get_string("a.empty_string").value(), "");
  EXPECT_EQ(f.get_string_array("a.strings").value(), (std::vector<std::string_view>{"\xE2\x96\x81hi", "", "<0x0A>"}));
  EXPECT_EQ(f.get_float_array("a.f32s").value(), (std::vector<float>{1.0f, -2.5f, 1e-7f}));
  EXPECT_EQ(f.get_int_array("a.i32s").value(), (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_TRUE(f.get_int_array("a.empty")->empty());
  EXPECT_EQ(f.get_uint("b.u8").value(), 200u);
  EXPECT_EQ(f.get_int("b.i8").value(), -100);
  EXPECT_EQ(f.get_uint("b.u16").value(), 60000u);
  EXPECT_EQ(f.get_int("b.i16").value(), -30000);
  EXPECT_EQ(f.get_int("b.i64").value(), INT64_MIN);
  EXPECT_EQ(f.get_float("b.f64").value(), 2.718281828459045);
  EXPECT_FALSE(f.get_bool("b.bool").value());
  EXPECT_EQ(f.get_int_array("c.u8").value(), (std::vector<int64_t>{0, 7, 255}));
  EXPECT_EQ(f.get_int_array("c.i8").value(), (std::vector<int64_t>{-128, 0, 127}));
  EXPECT_EQ(f.get_int_array("c.u16").value(), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(f.get_int_array("c.i16").value(), (std::vector<int64_t>{-32768, 5}));
  EXPECT_EQ(f.get_int_array("c.u32").value(), (std::vector<int64_t>{4000000000}));
  EXPECT_EQ(f.get_int_array("c.i64").value(), (std::vector<int64_t>{INT64_MIN, -1, INT64_MAX}));
  EXPECT_EQ(f.get_float_array("c.f64").value(), (std::vector<float>{3.25f, static_cast<float>(-1e300)}));
  EXPECT_NE(f.get_int_array("c.u64").error().find("does not fit in int64"), std::string::npos);
  EXPECT_NE(f.get_uint("b.i8").error().find("negative (-100)"), std::string::npos);
  const auto& bools_read = std::get<ArrayValue>(f.find("c.bool")->value);
  EXPECT_EQ(bools_read.elem_type, ValueType::BOOL);
  EXPECT_EQ(std::memcmp(bools_read.data, bools, 3), 0);

  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* t = f.find_tensor("t.q8_0");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, DType::Q8_0);
  EXPECT_EQ(t->dims, (std::vector<int64_t>{32, 1, 2}));
  EXPECT_EQ(t->nbytes, q8.size());
  EXPECT_EQ(std::memcmp(t->data, q8.data(), q8.size()), 0);
  EXPECT_EQ(std::memcmp(f.find_tensor("t.f32")->data, f32.data(), 24), 0);
  EXPECT_EQ(std::memcmp(f.find_tensor("t.f16")->data, f16.data(), 10), 0);
  expect_tensors_consistent(f);

  // Padding between the header and the data, and after every tensor, is zero.
  std::vector<std::pair<uint64_t, uint64_t>> used;  // [begin, end) of meaningful bytes
  for (const TensorInfo& ti : f.tensors())
    used.emplace_back(f.data_offset() + ti.offset, f.data_offset() + ti.offset + ti.nbytes);
  uint64_t header_end = 0;
  for (uint64_t i = f.data_offset(); i > 0 && header_end == 0; --i) {
    if (bytes[i - 1] != 0) header_end = i;
  }
  for (uint64_t i = header_end; i < bytes.size(); ++i) {
    bool inside = false;
    for (auto [b, e] : used) inside = inside || (i >= b && i < e);
    if (!inside) {
      ASSERT_EQ(bytes[i], 0) << "byte " << i;
    }
  }
}

TEST(GgufWriter, SetTwiceReplacesInPlace) {
  GgufWriter w;
  w.set_uint32("a", 1);
  w.set_string("b", "x");
  w.set_string("a", "now a string");
  auto f = GgufFile::from_bytes(w.to_bytes(), "m.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_EQ((*f)->metadata().size(), 2u);
  EXPECT_EQ((*f)->metadata()[0].key, "a");
  EXPECT_EQ((*f)->get_string("a").value(), "now a string");
}

TEST(GgufWriter, CustomAlignment) {
  GgufWriter w;
  w.set_uint32("general.alignment", 64);
  const float a[3] = {1, 2, 3}, b[16] = {};
  w.add_tensor("a", DType::F32, {3}, a, sizeof a);
  w.add_tensor("b", DType::F32, {16}, b, sizeof b);
  auto f = GgufFile::from_bytes(w.to_bytes(), "m.gguf");
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->alignment(), 64u);
  EXPECT_EQ((*f)->data_offset() % 64, 0u);
  EXPECT_EQ((*f)->find_tensor("b")->offset, 64u);

  GgufWriter bad;
  bad.set_uint32("general.alignment", 48);
  const Status s = bad.write(test::temp_path("bad_alignment.gguf"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("general.alignment must be a nonzero power of two"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(test::temp_path("bad_alignment.gguf")));
}

TEST(GgufWriter, WriteStreamsTheSameBytes) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
  std::vector<float> big(70000);  // more than one write buffer of padding and data
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i);
  w.add_tensor_ref("big", DType::F32, {7, 10000}, big.data(), big.size() * 4);
  w.add_tensor("small", DType::F32, {1}, big.data(), 4);
  const std::string path = test::temp_path("written.gguf");
  const Status s = w.write(path);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const std::vector<unsigned char> on_disk = test::read_bytes(path);
  const std::vector<uint8_t> expected = w.to_bytes();
  EXPECT_TRUE(std::vector<uint8_t>(on_disk.begin(), on_disk.end()) == expected);
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ(std::memcmp((*f)->find_tensor("big")->data, big.data(), big.size() * 4), 0);

  const Status missing_dir = w.write(test::temp_path("no/such/dir/x.gguf"));
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_NE(missing_dir.message().find("no/such/dir/x.gguf"), std::string::npos) << missing_dir.message();
}

TEST(GgufFile, ValueTypeNames) {
  EXPECT_EQ(value_type_name(ValueType::U8), "u8");
  EXPECT_EQ(value_type_name(ValueType::STRING), "string");
  EXPECT_EQ(value_type_name(ValueType::F64), "f64");
  EXPECT_EQ(value_type_name(static_cast<ValueType>(13)), "unknown");
  EXPECT_EQ(value_type_size(ValueType::I64), 8u);
  EXPECT_EQ(value_type_size(ValueType::ARRAY), 0u);
}

}  // namespace
}  // namespace ll::gguf
