#pragma once
// Vocabularies and tokenizers read from the shared data, for the tokenizer tests.
#include <string>

#include "gguf/gguf_file.h"
#include "test_data.h"
#include "text/tokenizer.h"
#include "text/vocab.h"

namespace ll::test {

inline Result<text::Vocab> gguf_vocab(const std::string& relative) {
  LL_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::open(shared_data(relative)));
  return text::vocab_from_gguf(*file);
}

inline Result<text::Tokenizer> gguf_tokenizer(const std::string& relative) {
  LL_ASSIGN_OR_RETURN(text::Vocab v, gguf_vocab(relative));
  return text::Tokenizer::create(std::move(v));
}

}  // namespace ll::test
