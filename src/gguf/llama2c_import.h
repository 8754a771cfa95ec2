#pragma once
// llama2.c checkpoints (legacy "version 0" .bin: 7 int32 header, fp32 weights) and
// tokenizer.bin files, turned into an equivalent GGUF image (arch llama, F32 tensors,
// tokenizer.ggml.* metadata) so the rest of the engine has one input format.
#include <string>
#include <vector>

#include "core/status.h"
#include "gguf/gguf_writer.h"

namespace ll::gguf {

// True when the file does not start with the GGUF magic but looks like a llama2.c checkpoint.
bool looks_like_llama2c(const std::string& path);

// Builds the GGUF for a checkpoint + tokenizer. Errors name the file and the problem
// (sizes that do not match the header, a truncated file, ...).
Result<std::vector<uint8_t>> llama2c_to_gguf(const std::string& checkpoint_path, const std::string& tokenizer_path);

}  // namespace ll::gguf
