// llama2.c checkpoint + tokenizer.bin import, checked against the GGUF twins.
#include "model/llama2c_import.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "gguf/gguf_file.h"
#include "test_data.h"

namespace ll::model {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;
using gguf::ValueType;

const std::string kBin = test::shared_data("models/stories260K/stories260K.bin");
const std::string kTok = test::shared_data("models/stories260K/tok512.bin");
const std::string kTwin = test::shared_data("models/stories260K/stories260K.gguf");

std::unique_ptr<GgufFile> convert_stories() {
  auto bytes = llama2c_to_gguf(kBin, kTok);
  EXPECT_TRUE(bytes.ok()) << bytes.error();
  if (!bytes.ok()) return nullptr;
  auto f = GgufFile::from_bytes(std::move(bytes).value(), "stories260K (converted)");
  EXPECT_TRUE(f.ok()) << f.error();
  return f.ok() ? std::move(f).value() : nullptr;
}

std::unique_ptr<GgufFile> open(const std::string& path) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.error();
  return f.ok() ? std::move(f).value() : nullptr;
}

void write_file(const std::string& path, const void* data, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof v);
}

std::string error_of(const std::string& checkpoint, const std::string& tokenizer) {
  auto r = llama2c_to_gguf(checkpoint, tokenizer);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  return r.error();
}

TEST(Llama2cImport, TensorsEqualTheGgufTwin) {
  auto conv = convert_stories();
  auto twin = open(kTwin);
  ASSERT_NE(conv, nullptr);
  ASSERT_NE(twin, nullptr);
  ASSERT_EQ(conv->tensors().size(), 48u);
  ASSERT_EQ(conv->tensors().size(), twin->tensors().size());
  for (const TensorInfo& want : twin->tensors()) {
    SCOPED_TRACE(want.name);
    const TensorInfo* got = conv->find_tensor(want.name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->type, DType::F32);
    EXPECT_EQ(got->dims, want.dims);
    ASSERT_EQ(got->nbytes, want.nbytes);
    EXPECT_EQ(std::memcmp(got->data, want.data, want.nbytes), 0);
  }
  // Same tensor order and alignment as llama.cpp's converter: the data sections are identical.
  const uint64_t data_bytes = twin->file_size() - twin->data_offset();
  ASSERT_EQ(conv->file_size() - conv->data_offset(), data_bytes);
  EXPECT_EQ(std::memcmp(conv->base() + conv->data_offset(), twin->base() + twin->data_offset(), data_bytes), 0);
}

TEST(Llama2cImport, Metadata) {
  auto f = convert_stories();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(f->get_string("general.name").value(), "stories260K");
  EXPECT_EQ(f->get_uint("general.file_type").value(), 0u);
  EXPECT_EQ(f->get_uint("llama.context_length").value(), 512u);  // the .bin's seq_len (the twin says 2048)
  EXPECT_EQ(f->get_uint("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f->get_uint("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f->get_uint("llama.block_count").value(), 5u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f->get_uint("llama.attention.head_count_kv").value(), 4u);
  EXPECT_EQ(f->get_uint("llama.rope.dimension_count").value(), 8u);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("llama.attention.layer_norm_rms_epsilon").value()), 1e-5f);
  EXPECT_EQ(f->get_float("llama.rope.freq_base").value(), 10000.0);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model").value(), "llama");
  EXPECT_EQ(f->get_uint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(f->get_uint("tokenizer.ggml.eos_token_id").value(), 2u);
  EXPECT_EQ(f->get_uint("tokenizer.ggml.unknown_token_id").value(), 0u);
  EXPECT_TRUE(f->get_bool("tokenizer.ggml.add_bos_token").value());
  // Typed like llama.cpp's files, so consumers see the same key types from both sources.
  EXPECT_EQ(f->find("llama.block_count")->type, ValueType::U32);
  EXPECT_EQ(f->find("tokenizer.ggml.bos_token_id")->type, ValueType::U32);
}

// tok512.bin spells BOS/EOS "\n<s>\n" / "\n</s>\n" and spaces as ' '; converted, the whole
// vocabulary (spelling, scores and types) equals the twin's.
TEST(Llama2cImport, TokensEqualTheGgufTwin) {
  auto conv = convert_stories();
  auto twin = open(kTwin);
  ASSERT_NE(conv, nullptr);
  ASSERT_NE(twin, nullptr);
  EXPECT_EQ(conv->get_string_array("tokenizer.ggml.tokens").value(),
            twin->get_string_array("tokenizer.ggml.tokens").value());
  EXPECT_EQ(conv->get_float_array("tokenizer.ggml.scores").value(),
            twin->get_float_array("tokenizer.ggml.scores").value());
  EXPECT_EQ(conv->get_int_array("tokenizer.ggml.token_type").value(),
            twin->get_int_array("tokenizer.ggml.token_type").value());
  const auto tokens = conv->get_string_array("tokenizer.ggml.tokens").value();
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
}

// The 32000-token Llama 2 vocabulary in llama2.c form equals llama.cpp's llama-spm vocab,
// every id including <unk>, <s>, </s> and the byte tokens.
TEST(Llama2cImport, Llama2TokenizerEqualsLlamaSpm) {
  auto tok = read_llama2c_tokenizer(test::shared_data("vocab/llama2c/tokenizer.bin"));
  ASSERT_TRUE(tok.ok()) << tok.error();
  auto spm = open(test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf"));
  ASSERT_NE(spm, nullptr);
  const auto tokens = spm->get_string_array("tokenizer.ggml.tokens").value();
  const auto scores = spm->get_float_array("tokenizer.ggml.scores").value();
  const auto types = spm->get_int_array("tokenizer.ggml.token_type").value();
  ASSERT_EQ(tok->tokens.size(), 32000u);
  ASSERT_EQ(tokens.size(), 32000u);
  size_t mismatches = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tok->tokens[i] != tokens[i] || tok->scores[i] != scores[i] || tok->types[i] != types[i]) {
      if (++mismatches < 5) ADD_FAILURE() << "token " << i << ": '" << tok->tokens[i] << "' vs '" << tokens[i] << "'";
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(tok->tokens[15043], "\xE2\x96\x81Hello");
  EXPECT_EQ(tok->types[3], 6);    // <0x00>
  EXPECT_EQ(tok->types[259], 1);  // first merged piece
  EXPECT_EQ(tok->tokens[13], "<0x0A>");
}

TEST(Llama2cImport, ConvertWritesTheSameImage) {
  const std::string out = test::temp_path("stories260K.gguf");
  const Status s = convert_llama2c(kBin, kTok, out);
  ASSERT_TRUE(s.ok()) << s.message();
  auto bytes = llama2c_to_gguf(kBin, kTok);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  const std::vector<unsigned char> on_disk = test::read_bytes(out);
  EXPECT_TRUE(std::vector<uint8_t>(on_disk.begin(), on_disk.end()) == bytes.value());
  auto f = open(out);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->tensors().size(), 48u);
}

TEST(Llama2cImport, LooksLikeLlama2c) {
  ASSERT_TRUE(test::exists(kBin));
  ASSERT_TRUE(test::exists(kTwin));
  ASSERT_TRUE(test::exists(kTok));
  EXPECT_TRUE(looks_like_llama2c(kBin));
  EXPECT_FALSE(looks_like_llama2c(kTwin));
  EXPECT_FALSE(looks_like_llama2c(kTok));
  EXPECT_FALSE(looks_like_llama2c("/nonexistent.bin"));
}

TEST(Llama2cImport, TruncatedCheckpoint) {
  std::vector<unsigned char> full;
  ASSERT_NO_FATAL_FAILURE(full = test::read_bytes(kBin));
  ASSERT_TRUE(test::exists(kTok));
  const std::string path = test::temp_path("truncated.bin");
  write_file(path, full.data(), full.size() - 4);
  std::string e = error_of(path, kTok);
  EXPECT_NE(
      e.find(path +
             ": file is 1056536 bytes, but its llama2.c header (dim 64, hidden_dim 172, n_layers 5, "
             "n_heads 8, n_kv_heads 4, vocab_size 512, seq_len 512) describes 1056540 bytes: the file is truncated"),
      std::string::npos)
      << e;
  EXPECT_FALSE(looks_like_llama2c(path));

  write_file(path, full.data(), 20);
  e = error_of(path, kTok);
  EXPECT_NE(e.find("truncated at byte 20 while reading the 28-byte llama2.c header"), std::string::npos) << e;

  std::vector<unsigned char> longer = full;
  longer.push_back(0);
  write_file(path, longer.data(), longer.size());
  e = error_of(path, kTok);
  EXPECT_NE(e.find("file is 1056541 bytes"), std::string::npos) << e;
}

TEST(Llama2cImport, BadHeaders) {
  std::vector<unsigned char> bytes;
  ASSERT_NO_FATAL_FAILURE(bytes = test::read_bytes(kBin));
  ASSERT_TRUE(test::exists(kTok));
  ASSERT_TRUE(test::exists(kTwin));
  const std::string path = test::temp_path("bad_header.bin");
  auto with_field = [&](int index, int32_t value) {
    std::vector<unsigned char> b = bytes;
    std::memcpy(b.data() + 4 * index, &value, 4);
    write_file(path, b.data(), b.size());
    return error_of(path, kTok);
  };
  EXPECT_NE(with_field(3, 3).find("n_heads not a multiple of n_kv_heads"), std::string::npos);
  EXPECT_NE(with_field(2, 0).find("not positive"), std::string::npos);
  EXPECT_NE(with_field(5, INT32_MIN).find("describes"), std::string::npos);  // huge, but no overflow
  EXPECT_NE(with_field(0, 1 << 30).find("describes"), std::string::npos);
  EXPECT_NE(with_field(0, INT32_MAX).find("dim not a multiple of 2 * n_heads"), std::string::npos);
  const uint32_t export_magic = 0x616b3432;
  EXPECT_NE(with_field(0, static_cast<int32_t>(export_magic)).find("export version"), std::string::npos);
  EXPECT_NE(error_of(kTwin, kTok).find("is a GGUF file, not a llama2.c checkpoint"), std::string::npos);
}

TEST(Llama2cImport, TokenizerErrors) {
  std::vector<unsigned char> tok;
  ASSERT_NO_FATAL_FAILURE(tok = test::read_bytes(kTok));
  ASSERT_TRUE(test::exists(kBin));
  const std::string llama2_tok = test::shared_data("vocab/llama2c/tokenizer.bin");
  ASSERT_TRUE(test::exists(llama2_tok));
  std::string e = error_of(kBin, llama2_tok);
  EXPECT_NE(e.find("has 32000 tokens, but the checkpoint " + kBin + " has a vocabulary of 512"), std::string::npos)
      << e;

  const std::string path = test::temp_path("tok_truncated.bin");
  write_file(path, tok.data(), tok.size() - 3);  // cuts the last token's bytes
  e = error_of(kBin, path);
  EXPECT_NE(e.find("token 511"), std::string::npos) << e;
  EXPECT_NE(e.find("has length"), std::string::npos) << e;

  write_file(path, tok.data(), 4 + 8 + 5 + 2);  // cuts token 1's score and length
  e = error_of(kBin, path);
  EXPECT_NE(e.find("truncated at byte 17 while reading the score and length of token 1"), std::string::npos) << e;

  std::vector<unsigned char> negative(tok.begin(), tok.begin() + 4 + 8 + 5);
  append<float>(negative, 0.0f);
  append<int32_t>(negative, -1);
  write_file(path, negative.data(), negative.size());
  e = error_of(kBin, path);
  EXPECT_NE(e.find("token 1 at byte 21 has length -1"), std::string::npos) << e;
}

// A checkpoint with its own classifier (negative vocab_size), checked element by element.
TEST(Llama2cImport, SeparateClassifier) {
  const int32_t dim = 8, hidden = 16, layers = 2, heads = 2, kv_heads = 1, vocab = 4, seq_len = 3;
  const int32_t kv_dim = dim * kv_heads / heads, head_size = dim / heads;
  std::vector<uint8_t> bin;
  for (int32_t v : {dim, hidden, layers, heads, kv_heads, -vocab, seq_len}) append(bin, v);
  // Every float is its own index among the weights, so any slicing error shows.
  const int64_t n_floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) +
                           dim + seq_len * head_size + vocab * dim;
  for (int64_t i = 0; i < n_floats; ++i) append(bin, static_cast<float>(i));
  const std::string bin_path = test::temp_path("tiny.bin");
  write_file(bin_path, bin.data(), bin.size());

  std::vector<uint8_t> tok;
  append<int32_t>(tok, 7);
  for (std::string_view s : {"<unk>", "\n<s>\n", "\n</s>\n", " a b"}) {
    append<float>(tok, -1.0f);
    append<int32_t>(tok, static_cast<int32_t>(s.size()));
    tok.insert(tok.end(), s.begin(), s.end());
  }
  const std::string tok_path = test::temp_path("tiny_tok.bin");
  write_file(tok_path, tok.data(), tok.size());

  EXPECT_TRUE(looks_like_llama2c(bin_path));
  auto bytes = llama2c_to_gguf(bin_path, tok_path);
  ASSERT_TRUE(bytes.ok()) << bytes.error();
  auto f = GgufFile::from_bytes(std::move(bytes).value(), "tiny");
  ASSERT_TRUE(f.ok()) << f.error();
  EXPECT_EQ((*f)->get_string_array("tokenizer.ggml.tokens").value(),
            (std::vector<std::string_view>{"<unk>", "<s>", "</s>",
                                           "\xE2\x96\x81"
                                           "a\xE2\x96\x81"
                                           "b"}));
  EXPECT_EQ((*f)->get_int_array("tokenizer.ggml.token_type").value(), (std::vector<int64_t>{2, 3, 3, 1}));

  // First float of each tensor, in llama2.c file order.
  const int64_t L = layers, d = dim, h = hidden, kv = kv_dim;
  const int64_t emb = 0, rms_att = emb + vocab * d, wq = rms_att + L * d, wk = wq + L * d * d, wv = wk + L * kv * d,
                wo = wv + L * kv * d, rms_ffn = wo + L * d * d, w1 = rms_ffn + L * d, w2 = w1 + L * h * d,
                w3 = w2 + L * d * h, rms_final = w3 + L * h * d, wcls = rms_final + d + seq_len * head_size;
  auto first = [&](const std::string& name) {
    const TensorInfo* t = (*f)->find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    float v = -1;
    if (t != nullptr) std::memcpy(&v, t->data, 4);
    return static_cast<int64_t>(v);
  };
  EXPECT_EQ(first("token_embd.weight"), emb);
  EXPECT_EQ(first("output.weight"), wcls);
  EXPECT_EQ(first("output_norm.weight"), rms_final);
  EXPECT_EQ(first("blk.1.attn_norm.weight"), rms_att + d);
  EXPECT_EQ(first("blk.1.attn_q.weight"), wq + d * d);
  EXPECT_EQ(first("blk.1.attn_k.weight"), wk + kv * d);
  EXPECT_EQ(first("blk.1.attn_v.weight"), wv + kv * d);
  EXPECT_EQ(first("blk.1.attn_output.weight"), wo + d * d);
  EXPECT_EQ(first("blk.1.ffn_norm.weight"), rms_ffn + d);
  EXPECT_EQ(first("blk.1.ffn_gate.weight"), w1 + h * d);
  EXPECT_EQ(first("blk.1.ffn_down.weight"), w2 + d * h);
  EXPECT_EQ(first("blk.1.ffn_up.weight"), w3 + h * d);
  EXPECT_EQ((*f)->find_tensor("blk.0.attn_k.weight")->dims, (std::vector<int64_t>{d, kv}));
  EXPECT_EQ((*f)->find_tensor("blk.0.ffn_down.weight")->dims, (std::vector<int64_t>{h, d}));
  EXPECT_EQ((*f)->find_tensor("output.weight")->dims, (std::vector<int64_t>{d, vocab}));
}

}  // namespace
}  // namespace ll::model
