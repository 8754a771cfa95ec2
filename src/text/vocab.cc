#include "text/vocab.h"

#include <cstdint>

namespace ll::text {

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

}  // namespace ll::text
