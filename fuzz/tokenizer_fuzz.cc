// Fuzzes the tokenizer with real vocabularies: stories260K's 512 tokens (llama2.c's
// tok512.bin), Llama 2's 32000 (llama.cpp's llama-spm GGUF) and Phi-3's (user-defined tokens).
// The first byte picks the vocabulary and whether BOS is added; the rest is encoded as text,
// and decoded as arbitrary token ids (in and out of range) through the Detokenizer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf_file.h"
#include "model/llama2c_import.h"
#include "text/tokenizer.h"

namespace {

std::string shared_data(const std::string& relative) {
  const char* dir = std::getenv("LL_SHARED_DATA");
  return std::string(dir != nullptr ? dir : LL_SHARED_DATA) + "/" + relative;
}

// A vocabulary that cannot be read stops the fuzzer at once: it would test nothing.
ll::text::Tokenizer must(ll::Result<ll::text::Vocab> vocab, const std::string& what) {
  if (!vocab.ok()) {
    std::fprintf(stderr, "tokenizer_fuzz: cannot read %s: %s\n", what.c_str(), vocab.error().c_str());
    std::exit(1);
  }
  auto tok = ll::text::Tokenizer::create(std::move(vocab).value());
  if (!tok.ok()) {
    std::fprintf(stderr, "tokenizer_fuzz: %s: %s\n", what.c_str(), tok.error().c_str());
    std::exit(1);
  }
  return std::move(tok).value();
}

ll::Result<ll::text::Vocab> gguf_vocab(const std::string& path) {
  LL_ASSIGN_OR_RETURN(auto file, ll::gguf::GgufFile::open(path));
  return ll::text::vocab_from_gguf(*file);
}

const std::vector<ll::text::Tokenizer>& tokenizers() {
  static const auto* all = [] {
    auto* t = new std::vector<ll::text::Tokenizer>;
    const std::string tok512 = shared_data("models/stories260K/tok512.bin");
    const std::string spm = shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf");
    const std::string phi3 = shared_data("vocab/llamacpp/ggml-vocab-phi-3.gguf");
    t->push_back(must(ll::model::vocab_from_llama2c(tok512), tok512));
    t->push_back(must(gguf_vocab(spm), spm));
    t->push_back(must(gguf_vocab(phi3), phi3));
    return t;
  }();
  return *all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const ll::text::Tokenizer& tok = tokenizers()[data[0] % tokenizers().size()];
  const bool add_bos = (data[0] / tokenizers().size()) % 2 == 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<int32_t> ids = tok.encode(text, add_bos);
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
  }
  ll::text::Detokenizer encoded(tok);
  for (int32_t id : ids) (void)encoded.push(id);
  (void)encoded.flush();

  ll::text::Detokenizer arbitrary(tok);
  for (size_t i = 0; i + 4 <= text.size(); i += 4) {
    int32_t id;
    std::memcpy(&id, text.data() + i, sizeof id);
    (void)arbitrary.push(id);
    (void)tok.piece(id);
  }
  (void)arbitrary.flush();
  (void)tok.find(text);
  return 0;
}
