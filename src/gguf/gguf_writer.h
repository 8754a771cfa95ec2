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

  // The bytes are copied. dims in ggml order (dims[0] contiguous). The tensor must be valid
  // (1 to 4 dims, each >= 1, dims[0] a multiple of the block size, nbytes matching, a new
  // name): a malformed tensor is a bug in the caller and fails an LL_CHECK.
  void add_tensor(std::string_view name, DType type, std::vector<int64_t> dims, const void* data, size_t nbytes);
  // The bytes are referenced and must stay valid until write() / to_bytes() returns (large shards, synth).
  void add_tensor_ref(std::string_view name, DType type, std::vector<int64_t> dims, const void* data, size_t nbytes);

  // Streams to disk: header first, then each tensor's bytes straight from its buffer. The file
  // is written under a temporary name and renamed, so a failed write leaves no partial file.
  // An invalid general.alignment (not a power of two up to kMaxAlignment) is an error.
  Status write(const std::string& path) const;
  // The whole image in memory (tests, converted checkpoints); general.alignment must be valid.
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> owned;  // add_tensor: a copy of the bytes
    const void* data;            // add_tensor_ref: the caller's bytes
    size_t nbytes;
    // Resolved on use, so that copying or moving the writer never leaves a stale pointer.
    const void* bytes() const { return owned.empty() ? data : owned.data(); }
  };
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kvs_;  // key -> encoded (type + value)
  std::vector<Tensor> tensors_;
  void put(std::string_view key, std::vector<uint8_t> encoded);
  void add(Tensor t);
  Result<uint64_t> alignment() const;  // general.alignment when set, else kDefaultAlignment
  // Magic, counts, metadata and tensor infos, padded to `alignment`.
  std::vector<uint8_t> encode_header(uint64_t alignment) const;
};

}  // namespace ll::gguf
