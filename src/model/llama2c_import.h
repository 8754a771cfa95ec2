#pragma once
// llama2.c checkpoints (legacy "version 0" .bin: 7 int32 header, fp32 weights) and
// tokenizer.bin files, turned into an equivalent GGUF image (arch llama, F32 tensors,
// tokenizer.ggml.* metadata) so the rest of the engine has one input format.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "text/vocab.h"

namespace ll::model {

// True when the file does not start with the GGUF magic but looks like a llama2.c checkpoint:
// a valid header whose implied size is exactly the file size.
bool looks_like_llama2c(const std::string& path);
// Why the file is not a llama2.c checkpoint (its header, or a size that does not match it); Ok when it is one.
Status check_llama2c_checkpoint(const std::string& path);

// Builds the GGUF for a checkpoint + tokenizer. Errors name the file and the problem
// (sizes that do not match the header, a truncated file, ...).
Result<std::vector<uint8_t>> llama2c_to_gguf(const std::string& checkpoint_path, const std::string& tokenizer_path);

// Same conversion, streamed to `out_path` (the weights are never copied into memory).
Status convert_llama2c(const std::string& checkpoint_path, const std::string& tokenizer_path,
                       const std::string& out_path);

// A tokenizer.bin (int32 max_token_length, then per token: f32 score, int32 len, bytes) in
// GGUF spelling: ' ' becomes "▁" (U+2581), "\n<s>\n" and "\n</s>\n" become "<s>" and "</s>".
struct Llama2cTokenizer {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  // tokenizer.ggml.token_type: id 0 unknown (2), ids 1 and 2 (BOS, EOS) control (3),
  // "<0xNN>" byte (6), everything else normal (1).
  std::vector<int32_t> types;
};
Result<Llama2cTokenizer> read_llama2c_tokenizer(const std::string& path);

// The same tokenizer as a vocabulary, with llama2.c's fixed ids: <unk> 0, <s> 1, </s> 2.
Result<text::Vocab> vocab_from_llama2c(const std::string& path);

}  // namespace ll::model
