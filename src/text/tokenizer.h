#pragma once
// The tokenizers of llama.cpp: SentencePiece-style BPE by merge scores with byte fallback
// (tokenizer.ggml.model = "llama", as llm_tokenizer_spm and llama2.c) and byte-level BPE by
// merge rank after a regex pre-tokenizer ("gpt2", as llm_tokenizer_bpe).
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "text/bpe_merges.h"
#include "text/pre_tokenizer.h"
#include "text/vocab.h"

namespace ll::text {

class Tokenizer {
 public:
  // Refuses models other than "llama" and "gpt2", unknown pre-tokenizers and damaged merges.
  static Result<Tokenizer> create(Vocab vocab);

  // add_special (llama.cpp's add_special): BOS first when the vocab's add_bos says so, EOS last
  // when its add_eos does. SentencePiece vocabularies get the "▁" dummy prefix when they ask
  // for it. Empty text gives only those. User-defined tokens spelled in the text always become
  // their ids; control and unknown tokens only with parse_special (else they are plain text).
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special = false) const;
  // Bytes of one token: "▁" -> ' ' and "<0x0A>" -> '\n' (SentencePiece), GPT-2's byte spelling
  // back to bytes (byte-level BPE), user-defined tokens verbatim; control, unknown and unused
  // tokens and out-of-range ids give "".
  std::string piece(int32_t id) const;
  // The token spelled exactly `text` (in the vocabulary's own spelling), or -1.
  int32_t find(std::string_view text) const;
  // End of generation: EOS, EOT, EOM and the tokens llama.cpp recognises by their spelling
  // ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", ...).
  bool is_eog(int32_t id) const { return eog_.contains(id); }
  // Where a generated text ends: at end of generation, or at BOS (the model starting a new
  // text, as llama2.c stops).
  bool ends_generation(int32_t id) const { return is_eog(id) || id == vocab_.bos; }
  const std::unordered_set<int32_t>& eog_ids() const { return eog_; }
  bool byte_level() const { return merges_.has_value(); }
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
  // Byte-level BPE on one stretch of plain text.
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;

  Vocab vocab_;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> index_;
  // Token of each byte value: SentencePiece's byte fallback, or the byte's character in
  // byte-level BPE (-1 when the vocabulary lacks it).
  std::array<int32_t, 256> byte_ids_{};
  std::optional<PreTokenizer> pre_;      // byte-level BPE only
  std::optional<BpeMerges> merges_;      // byte-level BPE only
  std::vector<int32_t> special_;         // control, user-defined and unknown; longest spelling first
  std::unordered_set<int32_t> eog_;
};

// Turns a stream of token ids into text, emitting only complete UTF-8 sequences
// (byte tokens can split a character). For SentencePiece vocabularies, like llama2.c's
// decode/safe_printf: the first piece after BOS loses its leading space, and a one-byte piece
// that is an ASCII control character other than whitespace is dropped. Byte-level BPE pieces
// are kept as they are, as llama.cpp prints them.
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
