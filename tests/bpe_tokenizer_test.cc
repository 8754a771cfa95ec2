// Byte-level BPE: special tokens, end of generation, the pre-tokenizers, and the prompts and
// greedy texts of llama.cpp's runs of the tiny models.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "test_data.h"
#include "text/byte_level.h"
#include "text/pre_tokenizer.h"
#include "text/tokenizer.h"
#include "vocab_files.h"

namespace ll::text {
namespace {

using Ids = std::vector<int32_t>;
using test::gguf_tokenizer;
using test::gguf_vocab;

const std::string kLlamaBpe = "vocab/llamacpp/ggml-vocab-llama-bpe.gguf";
const std::string kQwen2 = "vocab/llamacpp/ggml-vocab-qwen2.gguf";

std::set<int32_t> eog_of(const Tokenizer& tok) { return {tok.eog_ids().begin(), tok.eog_ids().end()}; }

TEST(ByteLevel, EveryByteRoundTrips) {
  EXPECT_EQ(bytes_to_byte_level(" "), "\xC4\xA0");   // Ġ
  EXPECT_EQ(bytes_to_byte_level("\n"), "\xC4\x8A");  // Ċ
  EXPECT_EQ(bytes_to_byte_level("a~"), "a~");
  EXPECT_EQ(bytes_to_byte_level("\xE9"), "\xC3\xA9");  // é stands for itself
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), all);
  EXPECT_EQ(byte_level_to_bytes("x\xE4\xBD\xA0"), "x\xE4\xBD\xA0");  // 你 stands for no byte: kept
}

std::vector<std::string> split(std::string_view pre, std::string_view text) {
  auto p = PreTokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << p.error();
  if (!p.ok()) return {};
  std::vector<std::string> out;
  for (std::string_view w : p->split(text)) out.emplace_back(w);
  return out;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, Llama3GroupsDigitsByThreeAndKeepsContractions) {
  EXPECT_EQ(split("llama-bpe", "I'LL pay 1234567 now!!\n\n  ok"),
            (Words{"I", "'LL", " pay", " ", "123", "456", "7", " now", "!!\n\n", " ", " ok"}));
}

TEST(PreTokenizer, Qwen2SplitsSingleDigits) { EXPECT_EQ(split("qwen2", "x 123"), (Words{"x", " ", "1", "2", "3"})); }

TEST(PreTokenizer, BloomSplitsAtPunctuationAndSpaces) {
  EXPECT_EQ(split("bloom", "Hello, world! (x)"), (Words{"Hello", ",", " world", "! (", "x", ")"}));
}

TEST(PreTokenizer, WhitespaceIsUnicodeWhiteSpace) {
  // U+000B is white space for the models' tokenizers (ICU's \s leaves it out).
  EXPECT_EQ(split("gpt-2", "!\v"), (Words{"!", "\v"}));
  EXPECT_EQ(split("gpt-2", "a\xC2\x85"), (Words{"a", "\xC2\x85"}));  // U+0085
}

TEST(PreTokenizer, InvalidUtf8StaysInThePieces) {
  const Words words = split("llama-bpe", "ab\xFF\xC3 cd");
  std::string joined;
  for (const auto& w : words) joined += w;
  EXPECT_EQ(joined, "ab\xFF\xC3 cd");
}

TEST(PreTokenizer, UnknownName) {
  auto p = PreTokenizer::create("nope");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().find("pre-tokenizer 'nope' (tokenizer.ggml.pre) is not supported; supported: default, llama-bpe"),
            std::string::npos)
      << p.error();
}

class LlamaBpe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto start = std::chrono::steady_clock::now();
    auto t = gguf_tokenizer(kLlamaBpe);
    load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
  static Tokenizer* tok_;
  static inline std::string load_error_;
  static inline double load_seconds_ = 0;
};
Tokenizer* LlamaBpe::tok_ = nullptr;

TEST_F(LlamaBpe, LoadsFast) {
  std::printf("loading the 128256-token, 280147-merge llama-bpe vocabulary took %.3f s\n", load_seconds_);
  EXPECT_LT(load_seconds_, 5.0);  // about 0.3 s of CPU in a Release build
}

TEST_F(LlamaBpe, Settings) {
  const Vocab& v = tok_->vocab();
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_TRUE(v.add_bos);  // llama.cpp's default for llama-bpe: the file has no add_bos_token
  EXPECT_FALSE(v.add_eos);
  EXPECT_EQ(v.bos, 128000);
  EXPECT_EQ(v.eos, 128001);
  EXPECT_EQ(v.unk, -1);
  EXPECT_EQ(v.merges.size(), 280147u);
  EXPECT_TRUE(tok_->byte_level());
}

TEST_F(LlamaBpe, ParsesSpecialTokens) {
  const std::string text = "<|begin_of_text|>Hello<|eot_id|><|start_header_id|>";
  EXPECT_EQ(tok_->encode(text, /*add_special=*/false, /*parse_special=*/true), (Ids{128000, 9906, 128009, 128006}));
  // Without parse_special the spelling is plain text.
  const Ids plain = tok_->encode(text, false);
  EXPECT_GT(plain.size(), 4u);
  for (int32_t id : plain) EXPECT_LT(id, 128000);
  // add_special puts BOS first; there is no EOS since add_eos is off.
  EXPECT_EQ(tok_->encode("Hello", true), (Ids{128000, 9906}));
  EXPECT_EQ(tok_->encode("", true), (Ids{128000}));
  EXPECT_EQ(tok_->encode("", false), Ids{});
}

TEST_F(LlamaBpe, EndOfGeneration) {
  EXPECT_EQ(eog_of(*tok_), (std::set<int32_t>{128001, 128009}));  // <|end_of_text|>, <|eot_id|>
  EXPECT_TRUE(tok_->is_eog(128009));
  EXPECT_FALSE(tok_->is_eog(128000));
  EXPECT_FALSE(tok_->is_eog(9906));
}

TEST_F(LlamaBpe, Pieces) {
  EXPECT_EQ(tok_->piece(9906), "Hello");
  EXPECT_EQ(tok_->piece(tok_->find("\xC4\xA0world")), " world");
  EXPECT_EQ(tok_->piece(128009), "");  // control
  EXPECT_EQ(tok_->piece(-1), "");
  EXPECT_EQ(tok_->piece(128256), "");
}

TEST_F(LlamaBpe, DetokenizerKeepsTheSpaceAfterBos) {
  Detokenizer detok(*tok_);
  std::string text;
  for (int32_t id : tok_->encode(" Hello world", true)) text += detok.push(id);
  text += detok.flush();
  EXPECT_EQ(text, " Hello world");
}

TEST_F(LlamaBpe, DetokenizerBuffersSplitCharacters) {
  // 🦙 (F0 9F A6 99) is several tokens; nothing is printed until it is whole.
  const Ids ids = tok_->encode("\xF0\x9F\xA6\x99", false);
  ASSERT_GT(ids.size(), 1u);
  Detokenizer detok(*tok_);
  std::string text;
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(detok.push(ids[i]), "");
  EXPECT_EQ(detok.push(ids.back()), "\xF0\x9F\xA6\x99");
}

TEST(Qwen2, ParsesSpecialTokensAndEndsGeneration) {
  auto tok = gguf_tokenizer(kQwen2);
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_FALSE(tok->vocab().add_bos);  // llama.cpp's default for qwen2
  EXPECT_EQ(tok->encode("<|im_start|>user\nHi<|im_end|><|endoftext|>", true, /*parse_special=*/true),
            (Ids{151644, 872, 198, 13048, 151645, 151643}));
  EXPECT_EQ(eog_of(*tok), (std::set<int32_t>{151643, 151645}));  // <|endoftext|>, <|im_end|>
  EXPECT_EQ(tok->piece(151646), "");                              // [PAD151646], unused
}

TEST(EndOfGeneration, EveryVocabulary) {
  const std::pair<const char*, std::set<int32_t>> cases[] = {
      {"ggml-vocab-gpt-2.gguf", {50256}},        {"ggml-vocab-falcon.gguf", {11}},
      {"ggml-vocab-starcoder.gguf", {0}},        {"ggml-vocab-llama-spm.gguf", {2}},
      {"ggml-vocab-phi-3.gguf", {32000, 32007}},  // <|endoftext|>, <|end|>
  };
  for (const auto& [file, eog] : cases) {
    auto tok = gguf_tokenizer(std::string("vocab/llamacpp/") + file);
    ASSERT_TRUE(tok.ok()) << tok.error();
    EXPECT_EQ(eog_of(*tok), eog) << file;
  }
}

TEST(AddEos, WhenTheVocabularyAsks) {
  auto v = gguf_vocab("vocab/llamacpp/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(v.ok()) << v.error();
  v->add_eos = true;
  auto tok = Tokenizer::create(std::move(v).value());
  ASSERT_TRUE(tok.ok()) << tok.error();
  EXPECT_EQ(tok->encode("Hello", true), (Ids{15496, 50256}));
  EXPECT_EQ(tok->encode("Hello", false), (Ids{15496}));
}

TEST(UserDefinedTokens, AreMatchedWithoutParseSpecial) {
  auto v = gguf_vocab("vocab/llamacpp/ggml-vocab-gpt-2.gguf");
  ASSERT_TRUE(v.ok()) << v.error();
  v->types[50256] = TokenType::UserDefined;
  auto tok = Tokenizer::create(std::move(v).value());
  ASSERT_TRUE(tok.ok()) << tok.error();
  // <|endoftext|> is spelled like an EOG token, so it is a control token all the same.
  EXPECT_EQ(tok->vocab().types[50256], TokenType::Control);
  EXPECT_NE(tok->encode("a<|endoftext|>", false), (Ids{64, 50256}));
  EXPECT_EQ(tok->encode("a<|endoftext|>", false, true), (Ids{64, 50256}));
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

// The tiny models' vocabularies, their prompt ids and what llama.cpp printed for their greedy
// ids (reference/arch-tiny/README.md).
class ArchTiny : public ::testing::TestWithParam<const char*> {};

TEST_P(ArchTiny, PromptIdsAndGreedyText) {
  const std::string arch = GetParam();
  std::optional<Tokenizer> tok;
  for (const char* prompt : {"p1_en", "p2_nonascii", "p3_code"}) {
    SCOPED_TRACE(arch + "/" + prompt);
    std::string json_text;
    ASSERT_NO_FATAL_FAILURE(
        json_text = test::read_text(test::shared_data("reference/arch-tiny/" + arch + "/" + prompt + ".json")));
    const auto j = nlohmann::json::parse(json_text);
    if (!tok) {
      auto loaded = gguf_tokenizer(j["model"].get<std::string>());
      ASSERT_TRUE(loaded.ok()) << loaded.error();
      tok.emplace(std::move(loaded).value());
    }
    EXPECT_EQ(tok->vocab().add_bos, j["add_bos"].get<bool>());
    const Ids prompt_ids = tok->encode(j["prompt"].get<std::string>(), /*add_special=*/true);
    EXPECT_EQ(prompt_ids, j["prompt_ids"].get<Ids>());

    const Ids greedy = j["greedy_ids"].get<Ids>();
    const auto is_eog = j["greedy_is_eog"].get<std::vector<bool>>();
    const auto pieces_hex = j["greedy_pieces_hex"].get<std::vector<std::string>>();
    ASSERT_EQ(pieces_hex.size(), greedy.size());
    for (size_t i = 0; i < greedy.size(); ++i) EXPECT_EQ(tok->is_eog(greedy[i]), is_eog[i]) << i;
    // Generation stops at the first EOG token. llama.cpp printed control tokens' spellings
    // (special = true), which the Detokenizer leaves out.
    size_t n = 0;
    bool left_out = false;
    std::string pieces;
    for (; n < greedy.size() && !is_eog[n]; ++n) {
      if (tok->vocab().types[greedy[n]] == TokenType::Control) {
        left_out = true;
      } else {
        pieces += from_hex(pieces_hex[n]);
      }
    }

    Detokenizer detok(*tok);
    for (int32_t id : prompt_ids) detok.push(id);  // as generation does
    std::string text;
    for (size_t i = 0; i < n; ++i) text += detok.push(greedy[i]);
    text += detok.flush();
    if (n == greedy.size() && !left_out) {
      EXPECT_EQ(pieces, from_hex(j["greedy_text_hex"].get<std::string>()));
      // llama.cpp's bytes, with invalid UTF-8 replaced by U+FFFD
      EXPECT_EQ(text, j["greedy_text"].get<std::string>());
    } else {
      EXPECT_EQ(text, pieces);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ArchTiny, ::testing::Values("llama", "qwen2", "phi3", "gemma2", "bloom"));

}  // namespace
}  // namespace ll::text
