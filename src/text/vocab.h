#pragma once
// A tokenizer vocabulary as read from GGUF metadata (tokenizer.ggml.*); imports such as
// llama2.c's tokenizer.bin build one too (model/llama2c_import.h).
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "gguf/gguf_file.h"

namespace ll::text {

// Token types as in GGUF tokenizer.ggml.token_type.
enum class TokenType : int32_t { Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Vocab {
  std::string model = "llama";        // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
  std::string pre = "default";        // tokenizer.ggml.pre: the pre-tokenizer of "gpt2" vocabularies
  std::vector<std::string> tokens;    // "llama": spaces are U+2581 "▁"; "gpt2": GPT-2's byte-to-unicode spelling
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::vector<std::string> merges;    // "gpt2": "left right", highest priority first
  int32_t bos = 1, eos = 2, unk = 0;  // unk is -1 when the vocabulary has none
  int32_t eot = -1, eom = -1, pad = -1;  // -1: not set
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;
};

Result<Vocab> vocab_from_gguf(const gguf::GgufFile& file);

}  // namespace ll::text
