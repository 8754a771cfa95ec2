#include "text/vocab.h"

#include <cstdint>
#include <cstring>

#include "core/mapped_file.h"

namespace ll::text {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"

bool is_byte_token_text(std::string_view s) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
  return s.size() == 6 && s.substr(0, 3) == "<0x" && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

}  // namespace

Result<Vocab> vocab_from_gguf(const gguf::GgufFile& file) {
  const std::string& name = file.name();
  Vocab v;
  LL_ASSIGN_OR_RETURN(v.model, file.get_string("tokenizer.ggml.model"));
  LL_ASSIGN_OR_RETURN(auto tokens, file.get_string_array("tokenizer.ggml.tokens"));
  if (tokens.empty()) return Status::Errorf("{}: tokenizer.ggml.tokens is empty", name);
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) return Status::Errorf("{}: too many tokens ({})", name, tokens.size());
  const size_t n = tokens.size();
  v.tokens.assign(tokens.begin(), tokens.end());

  if (file.find("tokenizer.ggml.scores") != nullptr) {
    LL_ASSIGN_OR_RETURN(v.scores, file.get_float_array("tokenizer.ggml.scores"));
    if (v.scores.size() != n)
      return Status::Errorf("{}: tokenizer.ggml.scores has {} entries, tokenizer.ggml.tokens has {}", name, v.scores.size(), n);
  } else {
    v.scores.assign(n, 0.0f);
  }

  if (file.find("tokenizer.ggml.token_type") != nullptr) {
    LL_ASSIGN_OR_RETURN(auto types, file.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != n)
      return Status::Errorf("{}: tokenizer.ggml.token_type has {} entries, tokenizer.ggml.tokens has {}", name, types.size(), n);
    v.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > static_cast<int64_t>(TokenType::Byte))
        return Status::Errorf("{}: token {} has unknown token type {}", name, i, types[i]);
      v.types.push_back(static_cast<TokenType>(types[i]));
    }
  } else {
    v.types.assign(n, TokenType::Normal);
  }

  // Defaults are those of llama.cpp for SentencePiece vocabularies.
  const bool spm = v.model == "llama";
  LL_ASSIGN_OR_RETURN(uint64_t bos, file.get_uint_or("tokenizer.ggml.bos_token_id", 1));
  LL_ASSIGN_OR_RETURN(uint64_t eos, file.get_uint_or("tokenizer.ggml.eos_token_id", 2));
  LL_ASSIGN_OR_RETURN(uint64_t unk, file.get_uint_or("tokenizer.ggml.unknown_token_id", 0));
  const std::pair<const char*, uint64_t> ids[] = {{"bos", bos}, {"eos", eos}, {"unknown", unk}};
  for (const auto& [what, id] : ids) {
    if (id >= n) return Status::Errorf("{}: {} token id {} is outside the vocabulary of {} tokens", name, what, id, n);
  }
  v.bos = static_cast<int32_t>(bos);
  v.eos = static_cast<int32_t>(eos);
  v.unk = static_cast<int32_t>(unk);
  LL_ASSIGN_OR_RETURN(v.add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", spm));
  LL_ASSIGN_OR_RETURN(v.add_space_prefix, file.get_bool_or("tokenizer.ggml.add_space_prefix", spm));
  return v;
}

Result<Vocab> vocab_from_llama2c(const std::string& path) {
  LL_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  const uint8_t* data = mapped->data();
  const size_t size = mapped->size();
  auto read_i32 = [&](size_t at) {
    int32_t x;
    std::memcpy(&x, data + at, sizeof x);
    return x;
  };

  // Layout: int32 max_token_length, then until EOF: float32 score, int32 len, len bytes.
  if (size < 4) return Status::Errorf("{}: too small for a llama2.c tokenizer ({} bytes)", path, size);
  if (read_i32(0) <= 0) return Status::Errorf("{}: bad max_token_length {}", path, read_i32(0));
  Vocab v;
  v.model = "llama";
  size_t at = 4;
  while (at < size) {
    if (size - at < 8) return Status::Errorf("{}: partial token entry at byte offset {}", path, at);
    float score;
    std::memcpy(&score, data + at, sizeof score);
    const int32_t len = read_i32(at + 4);
    at += 8;
    if (len < 0 || static_cast<size_t>(len) > size - at)
      return Status::Errorf("{}: token {} has length {} but only {} bytes remain (byte offset {})", path, v.tokens.size(), len,
                            size - at, at - 4);
    std::string raw(reinterpret_cast<const char*>(data + at), static_cast<size_t>(len));
    at += static_cast<size_t>(len);
    if (v.tokens.size() >= static_cast<size_t>(INT32_MAX)) return Status::Errorf("{}: too many tokens", path);

    const auto id = static_cast<int32_t>(v.tokens.size());
    TokenType type = TokenType::Normal;
    std::string text;
    if (raw == "\n<s>\n" || raw == "\n</s>\n") {
      text = raw.substr(1, raw.size() - 2);
    } else {
      for (char c : raw) {
        if (c == ' ') text += kSpaceMarker;
        else text += c;
      }
    }
    if (id == v.unk) type = TokenType::Unknown;
    else if (id == v.bos || id == v.eos) type = TokenType::Control;
    else if (is_byte_token_text(text)) type = TokenType::Byte;
    v.tokens.push_back(std::move(text));
    v.scores.push_back(score);
    v.types.push_back(type);
  }
  // llama2.c tokenizers always carry <unk>, <s>, </s> as ids 0, 1, 2.
  if (v.tokens.size() < 3) return Status::Errorf("{}: only {} tokens; <unk>, <s> and </s> are missing", path, v.tokens.size());
  return v;
}

}  // namespace ll::text
