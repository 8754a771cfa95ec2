#pragma once
// SentencePiece-style (BPE by merge scores, with byte fallback) tokenizer for
// tokenizer.ggml.model = "llama", matching llama.cpp's llm_tokenizer_spm and llama2.c.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "text/vocab.h"

namespace ll::text {

class Tokenizer {
 public:
  static Result<Tokenizer> create(Vocab vocab);  // refuses models other than "llama"

  // add_bos: prepend BOS. Applies the "▁" dummy prefix when the vocab asks for it.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Bytes of one token ("▁" -> ' ', "<0x0A>" -> '\n', control tokens -> "").
  std::string piece(int32_t id) const;
  const Vocab& vocab() const { return vocab_; }
  int32_t n_vocab() const { return static_cast<int32_t>(vocab_.tokens.size()); }

 private:
  explicit Tokenizer(Vocab v);
  Vocab vocab_;
  std::unordered_map<std::string, int32_t> index_;
};

// Turns a stream of token ids into text, emitting only complete UTF-8 sequences
// (byte tokens can split a character). The first piece after BOS loses its leading space.
class Detokenizer {
 public:
  explicit Detokenizer(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);  // text ready to print (may be empty)
  std::string flush();           // whatever is left (incomplete UTF-8 replaced by U+FFFD)

 private:
  const Tokenizer& tok_;
  std::string pending_;
  int32_t prev_ = -1;
};

}  // namespace ll::text
