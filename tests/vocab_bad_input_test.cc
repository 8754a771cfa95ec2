// Damaged or hostile byte-level BPE vocabularies: each gets an error that says what is wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace ll::text {
namespace {

// "a", "b", "ab" and a control token; merges "a b".
Vocab small_bpe() {
  Vocab v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  v.tokens = {"a", "b", "ab", "<|endoftext|>"};
  v.scores.assign(4, 0.0f);
  v.types = {TokenType::Normal, TokenType::Normal, TokenType::Normal, TokenType::Control};
  v.merges = {"a b"};
  v.bos = v.eos = 3;
  v.unk = -1;
  v.add_bos = false;
  v.add_space_prefix = false;
  return v;
}

std::string create_error(const Vocab& v) {
  auto tok = Tokenizer::create(v);
  return tok.ok() ? "(no error)" : tok.error();
}

TEST(BpeVocabBadInput, TheSmallVocabularyWorks) {
  auto tok = Tokenizer::create(small_bpe());
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_EQ(tok->encode("abba", false), (std::vector<int32_t>{2, 1, 0}));
}

TEST(BpeVocabBadInput, MergeWithoutSpace) {
  Vocab v = small_bpe();
  v.merges = {"a b", "ab"};
  EXPECT_NE(create_error(v).find("merge 1 \"ab\" is not two tokens separated by a space"), std::string::npos)
      << create_error(v);
  v.merges = {""};
  EXPECT_NE(create_error(v).find("merge 0 \"\" is not two tokens"), std::string::npos) << create_error(v);
  v.merges = {" a"};  // the split starts after the first byte
  EXPECT_NE(create_error(v).find("merge 0 \" a\" is not two tokens"), std::string::npos) << create_error(v);
}

TEST(BpeVocabBadInput, MergeNamingUnknownTokens) {
  Vocab v = small_bpe();
  v.merges = {"a zz"};
  EXPECT_NE(create_error(v).find("merge 0 \"a zz\" names \"zz\", which is not a token"), std::string::npos)
      << create_error(v);
  v.merges = {"b a"};  // "ba" is no token
  EXPECT_NE(create_error(v).find("names \"ba\", which is not a token"), std::string::npos) << create_error(v);
}

TEST(BpeVocabBadInput, UnknownPreTokenizer) {
  Vocab v = small_bpe();
  v.pre = "klingon";
  const std::string e = create_error(v);
  EXPECT_NE(e.find("pre-tokenizer 'klingon' (tokenizer.ggml.pre) is not supported; supported: default, llama-bpe"),
            std::string::npos)
      << e;
  for (const char* name : {"qwen2", "gpt-2", "falcon", "starcoder", "bloom"}) EXPECT_NE(e.find(name), std::string::npos) << e;
}

TEST(BpeVocabBadInput, TokenIdsOutOfRange) {
  Vocab v = small_bpe();
  v.eot = 4;
  EXPECT_NE(create_error(v).find("end-of-turn token id 4 is outside the vocabulary of 4 tokens"), std::string::npos)
      << create_error(v);
  v = small_bpe();
  v.eos = -1;
  EXPECT_NE(create_error(v).find("eos token id -1 is outside"), std::string::npos) << create_error(v);
  v = small_bpe();
  v.unk = 7;
  EXPECT_NE(create_error(v).find("unknown token id 7 is outside"), std::string::npos) << create_error(v);
}

// A GGUF holding small_bpe()'s vocabulary, with `edit` applied to the writer.
template <typename Edit>
std::vector<uint8_t> vocab_file(Edit edit) {
  gguf::GgufWriter w;
  w.set_string("general.architecture", "gpt2");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt-2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "<|endoftext|>"});
  w.set_int32_array("tokenizer.ggml.token_type", {1, 1, 1, 3});
  w.set_uint32("tokenizer.ggml.bos_token_id", 3);
  w.set_uint32("tokenizer.ggml.eos_token_id", 3);
  edit(w);
  return w.to_bytes();
}

Result<Vocab> vocab_of(std::vector<uint8_t> bytes) {
  LL_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::from_bytes(std::move(bytes), "bpe.gguf"));
  return vocab_from_gguf(*file);
}

TEST(BpeVocabBadInput, GgufGood) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter& w) { w.set_string_array("tokenizer.ggml.merges", {"a b"}); }));
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(v->unk, -1);
  EXPECT_EQ(v->eot, -1);
  EXPECT_FALSE(v->add_bos);  // gpt-2's default
  EXPECT_FALSE(v->add_space_prefix);
}

TEST(BpeVocabBadInput, GgufWithoutMerges) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter&) {}));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), "bpe.gguf: a 'gpt2' vocabulary needs tokenizer.ggml.merges, which is missing");
}

TEST(BpeVocabBadInput, GgufUnknownPreTokenizer) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter& w) {
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_string("tokenizer.ggml.pre", "klingon");
  }));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("bpe.gguf: pre-tokenizer 'klingon' (tokenizer.ggml.pre) is not supported"), std::string::npos)
      << v.error();
}

TEST(BpeVocabBadInput, GgufSpecialIdOutOfRange) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter& w) {
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_uint32("tokenizer.ggml.eot_token_id", 99);
  }));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error(), "bpe.gguf: tokenizer.ggml.eot_token_id = 99 is outside the vocabulary of 4 tokens");
}

TEST(BpeVocabBadInput, GgufMinusOneMeansNone) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter& w) {
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_uint32("tokenizer.ggml.padding_token_id", UINT32_MAX);
    w.set_int32("tokenizer.ggml.eot_token_id", -1);
  }));
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->pad, -1);
  EXPECT_EQ(v->eot, -1);
}

TEST(BpeVocabBadInput, GgufHugeMergeCount) {
  std::vector<uint8_t> bytes =
      vocab_file([](gguf::GgufWriter& w) { w.set_string_array("tokenizer.ggml.merges", {"a b"}); });
  // The key, then its type (array), the element type (string) and the count.
  const std::string key = "tokenizer.ggml.merges";
  auto at = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(at, bytes.end());
  const size_t count_at = static_cast<size_t>(at - bytes.begin()) + key.size() + 8;
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes.data() + count_at, &huge, 8);
  auto v = vocab_of(bytes);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("bpe.gguf"), std::string::npos) << v.error();
  EXPECT_NE(v.error().find("tokenizer.ggml.merges"), std::string::npos) << v.error();
}

TEST(BpeVocabBadInput, GgufMergesOfWrongType) {
  auto v = vocab_of(vocab_file([](gguf::GgufWriter& w) { w.set_int32_array("tokenizer.ggml.merges", {1, 2}); }));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().find("tokenizer.ggml.merges"), std::string::npos) << v.error();
}

}  // namespace
}  // namespace ll::text
