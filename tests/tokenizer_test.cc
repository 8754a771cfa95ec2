#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "gguf/gguf_file.h"
#include "model/llama2c_import.h"
#include "test_data.h"
#include "text/tokenizer.h"
#include "text/vocab.h"
#include "vocab_files.h"

namespace ll::text {
namespace {

using model::vocab_from_llama2c;
using test::gguf_tokenizer;
using test::gguf_vocab;

using Ids = std::vector<int32_t>;

Result<Tokenizer> llama2c_tokenizer(const std::string& relative) {
  LL_ASSIGN_OR_RETURN(Vocab v, vocab_from_llama2c(test::shared_data(relative)));
  return Tokenizer::create(std::move(v));
}

Ids parse_ids(const std::string& s) {
  Ids ids;
  std::istringstream in(s);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

std::string show(const Ids& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    parts.push_back(s.substr(pos, hit - pos));
  }
  parts.push_back(s.substr(pos));
  return parts;
}

// llama.cpp tests/test-tokenizer-0 format: inputs separated by a marker line (the file ends
// with one), line i of .out holds the ids of input i; encoded with add_special = false and
// parse_special = false. Byte-level BPE also decodes every input back to itself.
void check_llamacpp_vectors(const std::string& vocab_relative) {
  auto tok = gguf_tokenizer(vocab_relative);
  ASSERT_TRUE(tok.ok()) << tok.error();
  const std::string base = test::shared_data(vocab_relative);
  std::string inp, out;
  ASSERT_NO_FATAL_FAILURE(inp = test::read_text(base + ".inp"));
  ASSERT_NO_FATAL_FAILURE(out = test::read_text(base + ".out"));
  std::vector<std::string> inputs = split(inp, "\n__ggml_vocab_test__\n");
  std::vector<std::string> lines = split(out, "\n");
  ASSERT_TRUE(inputs.back().empty() && lines.back().empty());
  inputs.pop_back();
  lines.pop_back();
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(lines.size(), inputs.size());
  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Ids want = parse_ids(lines[i]);
    const Ids got = tok->encode(inputs[i], /*add_bos=*/false);
    if (got == want) {
      ++passed;
    } else {
      ADD_FAILURE() << "input " << i << " " << std::quoted(inputs[i]) << "\n  want" << show(want) << "\n  got " << show(got);
    }
    if (tok->byte_level()) {
      std::string pieces;
      Detokenizer detok(*tok);
      std::string detokenized;
      for (int32_t id : got) {
        pieces += tok->piece(id);
        detokenized += detok.push(id);
      }
      detokenized += detok.flush();
      EXPECT_EQ(pieces, inputs[i]) << "input " << i;
      EXPECT_EQ(detokenized, inputs[i]) << "input " << i;
    }
  }
  EXPECT_EQ(passed, inputs.size());
}

TEST(LlamaCppVectors, LlamaSpm) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-llama-spm.gguf"); }
TEST(LlamaCppVectors, Phi3) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-phi-3.gguf"); }
TEST(LlamaCppVectors, LlamaBpe) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-llama-bpe.gguf"); }
TEST(LlamaCppVectors, Qwen2) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-qwen2.gguf"); }
TEST(LlamaCppVectors, Gpt2) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-gpt-2.gguf"); }
TEST(LlamaCppVectors, Falcon) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-falcon.gguf"); }
TEST(LlamaCppVectors, Starcoder) { check_llamacpp_vectors("vocab/llamacpp/ggml-vocab-starcoder.gguf"); }

TEST(Llama2cVectors, TestC) {
  auto tok = llama2c_tokenizer("vocab/llama2c/tokenizer.bin");
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_EQ(tok->n_vocab(), 32000);
  std::string vectors;
  ASSERT_NO_FATAL_FAILURE(
      vectors = test::read_text(test::shared_data("reference/llama2c_tokenizer/test_c_vectors.json")));
  const auto j = nlohmann::json::parse(vectors);
  ASSERT_EQ(j["cases"].size(), 5u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text, /*add_bos=*/true), c["expected_ids"].get<Ids>()) << std::quoted(text);
  }
}

// The llama2.c file and llama-spm GGUF hold the same Llama 2 vocabulary.
TEST(Llama2cVectors, SameIdsFromGguf) {
  auto tok = gguf_tokenizer("vocab/llamacpp/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(tok.ok()) << tok.error();
  std::string vectors;
  ASSERT_NO_FATAL_FAILURE(
      vectors = test::read_text(test::shared_data("reference/llama2c_tokenizer/test_c_vectors.json")));
  const auto j = nlohmann::json::parse(vectors);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text, true), c["expected_ids"].get<Ids>()) << std::quoted(text);
  }
}

void check_tok512_encodings(const Tokenizer& tok) {
  std::string tsv;
  ASSERT_NO_FATAL_FAILURE(tsv = test::read_text(test::shared_data("derived/stories260K/tok512_prompt_encodings.tsv")));
  std::istringstream in(tsv);
  int cases = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const std::string prompt = line.substr(0, tab);
    EXPECT_EQ(tok.encode(prompt, true), parse_ids(line.substr(tab + 1))) << std::quoted(prompt);
    ++cases;
  }
  EXPECT_EQ(cases, 6);
}

TEST(Stories260K, PromptEncodingsLlama2c) {
  auto tok = llama2c_tokenizer("models/stories260K/tok512.bin");
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_EQ(tok->n_vocab(), 512);
  check_tok512_encodings(*tok);
}

TEST(Stories260K, PromptEncodingsGguf) {
  auto tok = gguf_tokenizer("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_tok512_encodings(*tok);
}

TEST(Stories260K, Llama2cVocabEqualsGgufVocab) {
  auto a = vocab_from_llama2c(test::shared_data("models/stories260K/tok512.bin"));
  auto b = gguf_vocab("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->scores, b->scores);
  EXPECT_TRUE(a->types == b->types);
  EXPECT_EQ(a->tokens[1], "<s>");
  EXPECT_EQ(a->tokens[2], "</s>");
  EXPECT_EQ(std::make_tuple(b->bos, b->eos, b->unk), std::make_tuple(1, 2, 0));
  EXPECT_TRUE(b->add_bos);
  EXPECT_TRUE(b->add_space_prefix);
}

void check_greedy_text(const Tokenizer& tok) {
  std::string ids_text, expected;
  ASSERT_NO_FATAL_FAILURE(
      ids_text = test::read_text(test::shared_data("derived/stories260K/greedy_t0_n200.token_ids.txt")));
  ASSERT_NO_FATAL_FAILURE(expected = test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
  const Ids ids = parse_ids(ids_text);
  ASSERT_EQ(ids.size(), 201u);
  Detokenizer detok(tok);
  std::string text;
  for (int32_t id : ids) text += detok.push(id);
  text += detok.flush();
  EXPECT_EQ(text, expected);
}

TEST(Detokenizer, GreedyTextLlama2c) {
  auto tok = llama2c_tokenizer("models/stories260K/tok512.bin");
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_greedy_text(*tok);
}

TEST(Detokenizer, GreedyTextGguf) {
  auto tok = gguf_tokenizer("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(tok.ok()) << tok.error();
  check_greedy_text(*tok);
}

class LlamaSpm : public ::testing::Test {
 protected:
  // A failed assertion here would mark the tests skipped, not failed: the error is kept and
  // every test fails on it in SetUp.
  static void SetUpTestSuite() {
    auto t = gguf_tokenizer("vocab/llamacpp/ggml-vocab-llama-spm.gguf");
    if (t.ok()) {
      tok_ = new Tokenizer(std::move(t).value());
    } else {
      load_error_ = t.error();
    }
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(tok_, nullptr) << load_error_; }
  static int32_t byte_token(uint8_t b) { return 3 + b; }  // <0x00> is id 3
  static Tokenizer* tok_;
  static inline std::string load_error_;
};
Tokenizer* LlamaSpm::tok_ = nullptr;

TEST_F(LlamaSpm, EmptyAndWhitespaceInput) {
  EXPECT_EQ(tok_->encode("", false), Ids{});
  EXPECT_EQ(tok_->encode("", true), Ids{1});
  EXPECT_EQ(tok_->encode(" ", false), Ids{259});  // "▁▁": the dummy prefix plus the space
}

TEST_F(LlamaSpm, SpecialTokensInTextArePlainText) {
  const Ids ids = tok_->encode("<s>hi</s>", false);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 0) << show(ids);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 0) << show(ids);
}

TEST_F(LlamaSpm, Pieces) {
  EXPECT_EQ(tok_->piece(15043), " Hello");
  EXPECT_EQ(tok_->piece(byte_token('\n')), "\n");
  EXPECT_EQ(tok_->piece(byte_token(0xF0)), "\xF0");
  EXPECT_EQ(tok_->piece(1), "");   // control
  EXPECT_EQ(tok_->piece(0), "");   // unknown
  EXPECT_EQ(tok_->piece(-1), "");  // out of range
  EXPECT_EQ(tok_->piece(32000), "");
  EXPECT_EQ(tok_->find("\xE2\x96\x81Hello"), 15043);
  EXPECT_EQ(tok_->find("no such token"), -1);
}

TEST_F(LlamaSpm, RoundTrip) {
  const std::string text =
      "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3 C\xE1\xBB\xAD" "a Vi\xE1\xBB\x87t\n\tend";
  Detokenizer detok(*tok_);
  std::string out;
  for (int32_t id : tok_->encode(text, true)) out += detok.push(id);
  out += detok.flush();
  EXPECT_EQ(out, text);
}

TEST_F(LlamaSpm, DetokenizerBuffersSplitCharacters) {
  // 🦙 (F0 9F A6 99) is not in the vocabulary: it is encoded as four byte tokens.
  const Ids ids = tok_->encode("a\xF0\x9F\xA6\x99.", false);
  ASSERT_EQ(ids.size(), 6u) << show(ids);
  EXPECT_EQ(Ids(ids.begin() + 1, ids.begin() + 5),
            (Ids{byte_token(0xF0), byte_token(0x9F), byte_token(0xA6), byte_token(0x99)}));

  Detokenizer detok(*tok_);
  EXPECT_EQ(detok.push(1), "");
  EXPECT_EQ(detok.push(ids[0]), "a");  // "▁a" after BOS loses its space
  EXPECT_EQ(detok.push(ids[1]), "");
  EXPECT_EQ(detok.push(ids[2]), "");
  EXPECT_EQ(detok.push(ids[3]), "");
  EXPECT_EQ(detok.push(ids[4]), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(detok.push(ids[5]), ".");
  EXPECT_EQ(detok.flush(), "");
}

TEST_F(LlamaSpm, DetokenizerLeadingSpaceOnlyAfterBos) {
  Detokenizer with_bos(*tok_);
  std::string text = with_bos.push(1);
  text += with_bos.push(15043);
  text += with_bos.push(15043);
  EXPECT_EQ(text, "Hello Hello");
  Detokenizer without_bos(*tok_);
  EXPECT_EQ(without_bos.push(15043), " Hello");
}

TEST_F(LlamaSpm, DetokenizerInvalidUtf8) {
  const std::string fffd = "\xEF\xBF\xBD";
  Detokenizer detok(*tok_);
  EXPECT_EQ(detok.push(byte_token(0xFF)), fffd);  // never valid
  EXPECT_EQ(detok.push(byte_token(0x9F)), fffd);  // stray continuation byte
  EXPECT_EQ(detok.push(byte_token(0xE6)), "");  // lead of a 3-byte character...
  EXPECT_EQ(detok.push(byte_token('x')), fffd + "x");  // ...cut short by an ASCII byte
  EXPECT_EQ(detok.push(byte_token(0xC3)), "");
  EXPECT_EQ(detok.flush(), fffd);  // incomplete at the end
  EXPECT_EQ(detok.push(byte_token(0xC0)), fffd);  // overlong lead
  EXPECT_EQ(detok.push(byte_token(0x80)), fffd);
}

TEST_F(LlamaSpm, DetokenizerDropsControlBytes) {
  Detokenizer detok(*tok_);
  EXPECT_EQ(detok.push(byte_token(0x01)), "");
  EXPECT_EQ(detok.push(byte_token(0x1B)), "");
  EXPECT_EQ(detok.push(byte_token('\t')), "\t");
  EXPECT_EQ(detok.push(byte_token('\n')), "\n");
}

TEST(Phi3, UserDefinedTokensAreSplitOut) {
  auto tok = gguf_tokenizer("vocab/llamacpp/ggml-vocab-phi-3.gguf");
  ASSERT_TRUE(tok.ok()) << tok.error();
  ASSERT_EQ(tok->vocab().types[2], TokenType::UserDefined);  // "</s>" in this vocabulary
  const Ids ab = tok->encode("a</s>b", false);
  EXPECT_EQ(ab, (Ids{tok->encode("a", false)[0], 2, tok->encode("b", false)[0]})) << show(ab);
  EXPECT_EQ(tok->piece(2), "</s>");
  EXPECT_EQ(tok->vocab().eos, 32000);
}

TEST(Tokenizer, RefusesOtherModels) {
  auto v = gguf_vocab("vocab/llamacpp/ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(v.ok()) << v.error();
  v->model = "t5";
  auto tok = Tokenizer::create(std::move(v).value());
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.error().find("tokenizer model 't5' is not supported"), std::string::npos) << tok.error();
}

TEST(Tokenizer, RefusesInconsistentVocab) {
  Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "a"};
  v.scores = {0, 0, 0};
  v.types.assign(4, TokenType::Normal);
  EXPECT_FALSE(Tokenizer::create(v).ok());
  v.scores.push_back(0);
  v.eos = 4;
  EXPECT_FALSE(Tokenizer::create(v).ok());
  v.eos = 2;
  EXPECT_TRUE(Tokenizer::create(v).ok());
}

TEST(Tokenizer, FallsBackToUnknownWithoutByteTokens) {
  Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a"};
  v.scores = {0, 0, 0, -1, -2, -3, -0.5f};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
             TokenType::Normal,  TokenType::Normal,  TokenType::Normal};
  auto tok = Tokenizer::create(v);
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_EQ(tok->encode("ab\xC3\xA9", true), (Ids{1, 6, 5, 0, 0}));  // é is two unknown bytes
  v.add_space_prefix = false;
  auto bare = Tokenizer::create(v);
  ASSERT_TRUE(bare.ok()) << bare.error();
  EXPECT_EQ(bare->encode("ab a", false), (Ids{4, 5, 6}));
}

TEST(Tokenizer, MergesHighestScoreFirstLeftmostOnTies) {
  Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab", "ba", "aba"};
  v.scores = {0, 0, 0, 0, 0, 1, 2, 5};
  v.types = {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
             TokenType::Normal,  TokenType::Normal,  TokenType::Normal,  TokenType::Normal};
  v.add_space_prefix = false;
  auto tok = Tokenizer::create(v);
  ASSERT_TRUE(tok.ok()) << tok.error();
  // "ba" (2) beats "ab" (1): a|ba -> "aba" would need "a"+"ba", which is a token.
  EXPECT_EQ(tok->encode("aba", false), (Ids{7}));
  // "abab": "ba" first (middle), then "a"+"ba" = "aba", leaving "b".
  EXPECT_EQ(tok->encode("abab", false), (Ids{7, 4}));
  v.scores = {0, 0, 0, 0, 0, 2, 2, 5};
  v.tokens[7] = "zzz";
  auto tie = Tokenizer::create(v);
  ASSERT_TRUE(tie.ok());
  // Equal scores: the leftmost pair "ab" merges first, and "ab"+"a" is not a token.
  EXPECT_EQ(tie->encode("aba", false), (Ids{5, 3}));
}

class Llama2cFile : public ::testing::Test {
 protected:
  static std::string entry(float score, const std::string& s) {
    std::string out(8, '\0');
    const auto len = static_cast<int32_t>(s.size());
    std::memcpy(out.data(), &score, 4);
    std::memcpy(out.data() + 4, &len, 4);
    return out + s;
  }
  static std::string header(int32_t max_len) { return std::string(reinterpret_cast<const char*>(&max_len), 4); }
  std::string write(const std::string& bytes) {
    const std::string path = test::temp_path("tok.bin");
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string good() {
    return header(6) + entry(0, "<unk>") + entry(0, "\n<s>\n") + entry(0, "\n</s>\n") + entry(0, "<0x0A>") + entry(-1, " ") +
           entry(-2, "a b");
  }
};

TEST_F(Llama2cFile, Converts) {
  auto v = vocab_from_llama2c(write(good()));
  ASSERT_TRUE(v.ok()) << v.error();
  EXPECT_EQ(v->tokens, (std::vector<std::string>{"<unk>", "<s>", "</s>", "<0x0A>", "\xE2\x96\x81", "a\xE2\x96\x81" "b"}));
  EXPECT_EQ(v->scores, (std::vector<float>{0, 0, 0, 0, -1, -2}));
  EXPECT_TRUE(v->types == (std::vector<TokenType>{TokenType::Unknown, TokenType::Control, TokenType::Control,
                                                   TokenType::Byte, TokenType::Normal, TokenType::Normal}));
}

TEST_F(Llama2cFile, RefusesBadFiles) {
  const std::string g = good();
  std::string negative = g + entry(0, "x");
  const int32_t minus = -1;
  std::memcpy(negative.data() + g.size() + 4, &minus, 4);
  std::string too_long = g + entry(0, "xyz");
  too_long.pop_back();
  const std::pair<const char*, std::string> cases[] = {
      {"empty", ""},
      {"header only", header(6)},
      {"bad max length", header(0) + g.substr(4)},
      {"partial entry", g + std::string(5, '\0')},
      {"negative length", negative},
      {"length past the end", too_long},
      {"missing specials", header(6) + entry(0, "<unk>")},
  };
  for (const auto& [what, bytes] : cases) {
    auto v = vocab_from_llama2c(write(bytes));
    ASSERT_FALSE(v.ok()) << what;
    EXPECT_NE(v.error().find("tok.bin"), std::string::npos) << v.error();
  }
  EXPECT_FALSE(vocab_from_llama2c("/nonexistent/tok.bin").ok());
}

}  // namespace
}  // namespace ll::text
