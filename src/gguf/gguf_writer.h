#pragma once
// GGUF v3 writer: metadata in insertion order, tensors aligned to general.alignment (32).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "gguf/gguf_file.h"

namespace ll::gguf {

class GgufWriter {
 public:
  // Setting a key twice replaces its value (keeps its position).
  void set_uint32(std::string_view key, uint32_t v);
  void set_int32(std::string_view key, int32_t v);
  void set_uint64(std::string_view key, uint64_t v);
  void set_float32(std::string_view key, float v);
  void set_bool(std::string_view key, bool v);
  void set_string(std::string_view key, std::string_view v);
  void set_string_array(std::string_view key, const std::vector<std::string>& v);
  void set_float32_array(std::string_view key, const std::vector<float>& v);
  void set_int32_array(std::string_view key, const std::vector<int32_t>& v);
  // Copies a key/value read from another file, keeping its exact type.
  void copy_kv(const KeyValue& kv);

  // The bytes are copied. dims in ggml order (dims[0] contiguous).
  void add_tensor(std::string_view name, DType type, std::vector<int64_t> dims, const void* data, size_t nbytes);
  // The bytes are referenced and must stay valid until write() returns (large shards, synth).
  void add_tensor_ref(std::string_view name, DType type, std::vector<int64_t> dims, const void* data, size_t nbytes);

  Status write(const std::string& path) const;  // streams to disk
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> owned;
    const void* data;
    size_t nbytes;
  };
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kvs_;  // key -> encoded (type + value)
  std::vector<Tensor> tensors_;
  void put(std::string_view key, std::vector<uint8_t> encoded);
};

}  // namespace ll::gguf
