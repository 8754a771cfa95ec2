// Fuzzes the GGUF reader with arbitrary bytes: from memory (every typed getter on every key),
// then as a model file (hyper-parameters, weight binding, vocabulary, tokenizer), the way a
// worker or the command opens a model.
#include <cstdint>
#include <vector>

#include "gguf/gguf_file.h"
#include "memory_file.h"
#include "model/model.h"
#include "text/tokenizer.h"

namespace {

void read_every_key(const ll::gguf::GgufFile& file) {
  for (const ll::gguf::KeyValue& kv : file.metadata()) {
    (void)file.get_uint(kv.key);
    (void)file.get_int(kv.key);
    (void)file.get_float(kv.key);
    (void)file.get_bool(kv.key);
    (void)file.get_string(kv.key);
    (void)file.get_string_array(kv.key);
    (void)file.get_float_array(kv.key);
    (void)file.get_int_array(kv.key);
  }
  for (const ll::gguf::TensorInfo& t : file.tensors()) {
    // The reader promises every tensor lies inside the image: touch its first and last byte.
    if (t.nbytes > 0) {
      volatile uint8_t first = t.data[0], last = t.data[t.nbytes - 1];
      (void)first;
      (void)last;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = ll::gguf::GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
  if (!file.ok()) return 0;
  read_every_key(*file.value());

  static ll::fuzz::MemoryFile memory("gguf_fuzz");
  auto model = ll::model::Model::load(memory.hold(data, size));
  if (!model.ok() || !model.value()->has_vocab()) return 0;
  auto tokenizer = ll::text::Tokenizer::create(model.value()->vocab());
  if (!tokenizer.ok()) return 0;
  for (int32_t id : tokenizer.value().encode("Once upon a time", true)) {
    if (id < 0 || id >= tokenizer.value().n_vocab()) __builtin_trap();
  }
  return 0;
}
