#pragma once
// Splits text into words before byte-level BPE, by the regular expressions of the pre-tokenizer
// named in tokenizer.ggml.pre (as llama.cpp does: each expression splits the pieces the previous
// one left, and the text between matches stays a piece of its own).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ll::text {

// What a pre-tokenizer name implies besides its expressions (llama.cpp's defaults).
struct PreTokenizerTraits {
  bool add_bos = false;        // when the vocabulary has no tokenizer.ggml.add_bos_token
  bool ignore_merges = false;  // a word that is a token is taken whole
};

class PreTokenizer {
 public:
  // Unknown names are an error that lists the supported ones.
  static Result<PreTokenizer> create(std::string_view name);
  static Result<PreTokenizerTraits> traits(std::string_view name);

  // Byte ranges of `text`, in order, covering it. Invalid UTF-8 bytes count as U+FFFD.
  std::vector<std::string_view> split(std::string_view text) const;
  const PreTokenizerTraits& traits() const { return traits_; }

 private:
  struct Expression;  // a compiled ICU regular expression
  PreTokenizer() = default;
  std::vector<std::shared_ptr<const Expression>> expressions_;
  PreTokenizerTraits traits_;
};

}  // namespace ll::text
