// Fuzzes the llama2.c importer: the input is a tokenizer.bin and a checkpoint, each read from
// its own in-memory file like the paths `convert` and `run` are given. The first two bytes
// (little-endian) say how many of the following bytes are the tokenizer; the rest is the
// checkpoint. A conversion that succeeds must give a GGUF the reader accepts.
#include <algorithm>
#include <cstdint>

#include "gguf/gguf_file.h"
#include "memory_file.h"
#include "model/llama2c_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t tokenizer_bytes = std::min<size_t>(data[0] | (size_t{data[1]} << 8), size - 2);
  static ll::fuzz::MemoryFile tokenizer("llama2c_tokenizer"), checkpoint("llama2c_checkpoint");
  const std::string tokenizer_path = tokenizer.hold(data + 2, tokenizer_bytes);
  const std::string checkpoint_path = checkpoint.hold(data + 2 + tokenizer_bytes, size - 2 - tokenizer_bytes);

  (void)ll::model::vocab_from_llama2c(tokenizer_path);
  (void)ll::model::looks_like_llama2c(checkpoint_path);
  auto image = ll::model::llama2c_to_gguf(checkpoint_path, tokenizer_path);
  if (!image.ok()) return 0;
  if (!ll::gguf::GgufFile::from_bytes(std::move(image).value(), "converted.gguf").ok()) __builtin_trap();
  return 0;
}
