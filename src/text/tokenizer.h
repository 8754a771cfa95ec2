#pragma once
// SentencePiece-style (BPE by merge scores, with byte fallback) tokenizer for
// tokenizer.ggml.model = "llama", matching llama.cpp's llm_tokenizer_spm and llama2.c.
#include <array>
#include <cstdint>
#include <functional>
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

  // add_bos: prepend BOS. Applies the "▁" dummy prefix when the vocab asks for it; empty text
  // gives no tokens besides BOS. Control tokens spelled in the text are not parsed (plain text);
  // user-defined tokens are, like llama.cpp does with parse_special = false.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = false) const;
  // Bytes of one token ("▁" -> ' ', "<0x0A>" -> '\n', control, unknown and unused tokens -> "",
  // user-defined tokens verbatim). Out-of-range ids give "".
  std::string piece(int32_t id) const;
  // The token spelled exactly `text` (SentencePiece spelling), or -1.
  int32_t find(std::string_view text) const;
  const Vocab& vocab() const { return vocab_; }
  int32_t n_vocab() const { return static_cast<int32_t>(vocab_.tokens.size()); }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  explicit Tokenizer(Vocab v);
  // SentencePiece BPE on one stretch of text that is already in "▁" spelling.
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;

  Vocab vocab_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> index_;
  std::array<int32_t, 256> byte_ids_{};  // byte-fallback token of each byte value
  std::vector<int32_t> user_defined_;    // longest spelling first
};

// Turns a stream of token ids into text, emitting only complete UTF-8 sequences
// (byte tokens can split a character). Like llama2.c's decode/safe_printf: the first piece
// after BOS loses its leading space, and a one-byte piece that is an ASCII control character
// other than whitespace is dropped.
class Detokenizer {
 public:
  explicit Detokenizer(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);  // text ready to print (may be empty)
  std::string flush();           // whatever is left (incomplete UTF-8 replaced by U+FFFD)

 private:
  // Moves the complete UTF-8 prefix of pending_ out (invalid bytes become U+FFFD); with
  // `final`, an incomplete tail is replaced as well.
  std::string drain(bool final);

  const Tokenizer& tok_;
  std::string pending_;
  int32_t prev_ = -1;
};

}  // namespace ll::text
