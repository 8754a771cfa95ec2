#include "text/vocab.h"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>

#include "text/pre_tokenizer.h"

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

  // Defaults are those of llama.cpp: SentencePiece's, or those of the BPE pre-tokenizer.
  const bool spm = v.model == "llama";
  bool default_add_bos = spm;
  if (!spm) {
    LL_ASSIGN_OR_RETURN(v.pre, file.get_string_or("tokenizer.ggml.pre", "default"));
    auto traits = PreTokenizer::traits(v.pre);
    if (!traits.ok()) return Status::Errorf("{}: {}", name, traits.error());
    default_add_bos = traits->add_bos;
    if (file.find("tokenizer.ggml.merges") == nullptr)
      return Status::Errorf("{}: a '{}' vocabulary needs tokenizer.ggml.merges, which is missing", name, v.model);
    LL_ASSIGN_OR_RETURN(auto merges, file.get_string_array("tokenizer.ggml.merges"));
    v.merges.assign(merges.begin(), merges.end());
  }
  constexpr uint64_t kNone = UINT64_MAX;
  const uint64_t defaults[] = {spm ? 1u : 11u, spm ? 2u : 11u, spm ? 0 : kNone, kNone, kNone, kNone};
  const std::pair<const char*, int32_t*> ids[] = {{"bos", &v.bos}, {"eos", &v.eos}, {"unknown", &v.unk},
                                                  {"eot", &v.eot}, {"eom", &v.eom}, {"padding", &v.pad}};
  for (size_t i = 0; i < std::size(ids); ++i) {
    const auto& [what, field] = ids[i];
    const std::string key = fmt::format("tokenizer.ggml.{}_token_id", what);
    uint64_t id = defaults[i];
    if (file.find(key) != nullptr) {
      LL_ASSIGN_OR_RETURN(int64_t stored, file.get_int(key));
      // -1, also as a 32-bit unsigned value, means "none" (llama2.c's converter writes it).
      if (stored != -1 && stored != UINT32_MAX) id = static_cast<uint64_t>(stored);
    }
    if (id == kNone) {
      *field = -1;
      continue;
    }
    if (id >= n) return Status::Errorf("{}: {} = {} is outside the vocabulary of {} tokens", name, key, id, n);
    *field = static_cast<int32_t>(id);
  }
  LL_ASSIGN_OR_RETURN(v.add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", default_add_bos));
  LL_ASSIGN_OR_RETURN(v.add_eos, file.get_bool_or("tokenizer.ggml.add_eos_token", false));
  LL_ASSIGN_OR_RETURN(v.add_space_prefix, file.get_bool_or("tokenizer.ggml.add_space_prefix", spm));
  return v;
}

}  // namespace ll::text
