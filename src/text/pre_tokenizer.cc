#include "text/pre_tokenizer.h"

#include <fmt/format.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <utility>

namespace ll::text {

struct PreTokenizer::Expression {
  std::unique_ptr<icu::RegexPattern> pattern;
};

namespace {

struct PreTokenizerSpec {
  std::vector<std::string_view> names;
  std::vector<std::string_view> expressions;
  PreTokenizerTraits traits;
};

// The expressions of llama.cpp's llm_tokenizer_bpe, as written in the models' tokenizer.json.
constexpr std::string_view kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::vector<PreTokenizerSpec>& specs() {
  static const std::vector<PreTokenizerSpec> all = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, {}},
      {{"llama-bpe", "llama3", "llama-v3"}, {kLlama3}, {.add_bos = true, .ignore_merges = true}},
      {{"qwen2", "deepseek-r1-qwen"}, {kQwen2}, {}},
      {{"gpt-2", "phi-2", "mpt", "olmo"}, {kGpt2}, {}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, {}},
      {{"starcoder", "refact", "command-r", "smollm"}, {R"(\p{N})", kGpt2}, {}},
      {{"bloom", "poro-chat", "gpt3-finnish"}, {R"( ?[^(\s|.,!?…。，、।۔،)]+)"}, {}},
  };
  return all;
}

Result<const PreTokenizerSpec*> find_spec(std::string_view name) {
  std::string known;
  for (const PreTokenizerSpec& s : specs()) {
    for (std::string_view n : s.names) {
      if (n == name) return &s;
      known += known.empty() ? "" : ", ";
      known += n;
    }
  }
  return Status::Errorf("pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported; supported: {}", name, known);
}

// ICU's \s leaves out U+000B and U+0085; llama.cpp and the models' own tokenizers mean the
// Unicode White_Space property.
std::string with_unicode_whitespace(std::string_view expression) {
  std::string out;
  for (size_t i = 0; i < expression.size(); ++i) {
    if (expression[i] == '\\' && i + 1 < expression.size() && (expression[i + 1] == 's' || expression[i + 1] == 'S')) {
      out += expression[i + 1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}";
      ++i;
    } else {
      out += expression[i];
    }
  }
  return out;
}

// The code point at `at` and its length in bytes; invalid or truncated sequences are one
// byte of U+FFFD.
std::pair<UChar32, size_t> decode_utf8(std::string_view s, size_t at) {
  const auto b0 = static_cast<uint8_t>(s[at]);
  if (b0 < 0x80) return {b0, 1};
  size_t need;
  UChar32 cp;
  UChar32 min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    return {0xFFFD, 1};
  }
  if (at + need >= s.size()) return {0xFFFD, 1};  // truncated
  for (size_t k = 1; k <= need; ++k) {
    const auto b = static_cast<uint8_t>(s[at + k]);
    if ((b & 0xC0) != 0x80) return {0xFFFD, 1};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {0xFFFD, 1};
  return {cp, need + 1};
}

}  // namespace

Result<PreTokenizerTraits> PreTokenizer::traits(std::string_view name) {
  LL_ASSIGN_OR_RETURN(const PreTokenizerSpec* spec, find_spec(name));
  return spec->traits;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
  LL_ASSIGN_OR_RETURN(const PreTokenizerSpec* spec, find_spec(name));
  PreTokenizer p;
  p.traits_ = spec->traits;
  for (std::string_view expression : spec->expressions) {
    const std::string pattern = with_unicode_whitespace(expression);
    UErrorCode status = U_ZERO_ERROR;
    UParseError where;
    auto compiled = std::make_shared<Expression>();
    compiled->pattern.reset(icu::RegexPattern::compile(icu::UnicodeString::fromUTF8(pattern), 0, where, status));
    if (U_FAILURE(status) || compiled->pattern == nullptr)
      return Status::Errorf("pre-tokenizer '{}': expression {} does not compile ({})", name, pattern, u_errorName(status));
    p.expressions_.push_back(std::move(compiled));
  }
  return p;
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  if (text.empty()) return {};
  icu::UnicodeString units;
  std::vector<size_t> byte_at;  // byte offset of each UTF-16 unit, then the end
  for (size_t at = 0; at < text.size();) {
    const auto [cp, len] = decode_utf8(text, at);
    units.append(cp);
    byte_at.resize(static_cast<size_t>(units.length()), at);
    at += len;
  }
  byte_at.push_back(text.size());

  std::vector<std::pair<int32_t, int32_t>> pieces{{0, units.length()}};
  for (const auto& expression : expressions_) {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexMatcher> matcher(expression->pattern->matcher(units, status));
    if (U_FAILURE(status)) continue;  // out of memory in ICU: the pieces stay as they are
    std::vector<std::pair<int32_t, int32_t>> next;
    for (const auto& [start, end] : pieces) {
      // Opaque region bounds: lookahead stops at the piece's end, as in llama.cpp.
      matcher->region(start, end, status);
      int32_t pos = start;
      while (matcher->find()) {
        const int32_t ms = matcher->start(status), me = matcher->end(status);
        if (U_FAILURE(status) || ms == me) continue;
        if (ms > pos) next.emplace_back(pos, ms);
        next.emplace_back(ms, me);
        pos = me;
      }
      if (pos < end) next.emplace_back(pos, end);
    }
    pieces = std::move(next);
  }

  std::vector<std::string_view> words;
  words.reserve(pieces.size());
  for (const auto& [start, end] : pieces) {
    const size_t from = byte_at[static_cast<size_t>(start)], to = byte_at[static_cast<size_t>(end)];
    words.push_back(text.substr(from, to - from));
  }
  return words;
}

}  // namespace ll::text
