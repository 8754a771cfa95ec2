#pragma once
// GGUF v2/v3 reader. Every count, size, offset and string length is checked against the
// file before it is used; a bad file yields a one-line error naming the file, what is
// wrong and where (byte offset), never a crash or a huge allocation.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"

namespace ll::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);
// Bytes of one element of a fixed-size type; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);

// general.alignment: 32 when absent; a file may set any power of two up to kMaxAlignment.
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
inline constexpr int kMaxDims = 4;

// An array value. Numeric elements stay in the file (little-endian, possibly unaligned);
// string elements are views into the file.
struct ArrayValue {
  ValueType elem_type = ValueType::U8;
  uint64_t count = 0;
  const uint8_t* data = nullptr;          // numeric elements, count * element size bytes
  std::vector<std::string_view> strings;  // when elem_type == STRING
};

struct KeyValue {
  std::string key;
  ValueType type = ValueType::U8;
  // Integers widen to uint64_t/int64_t, floats to double; strings are views into the file.
  std::variant<uint64_t, int64_t, double, bool, std::string_view, ArrayValue> value;
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  uint64_t offset = 0;        // from the start of the data section
  uint64_t nbytes = 0;
  int64_t n_elements = 0;
  const uint8_t* data = nullptr;  // points into the mapping
};

class GgufFile {
 public:
  // Maps and validates a file.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Validates an in-memory image (tests, converted llama2.c checkpoints). `name` is used in errors.
  static Result<std::unique_ptr<GgufFile>> from_bytes(std::vector<uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Start of the tensor data: the end of the tensor infos, aligned. In a file without tensors
  // it may lie past file_size() (writers need not pad such a file).
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* base() const { return base_; }  // start of the file image
  uint64_t file_size() const { return size_; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const KeyValue* find(std::string_view key) const;
  // Typed getters: the error names the file and the key, e.g. "m.gguf: key 'x' is a string, expected an integer".
  Result<uint64_t> get_uint(std::string_view key) const;  // any non-negative integer type
  Result<int64_t> get_int(std::string_view key) const;    // any integer type
  Result<double> get_float(std::string_view key) const;   // F32/F64 (integers accepted)
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  Result<std::vector<float>> get_float_array(std::string_view key) const;  // F32/F64 elements
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;  // integer elements
  // Defaults when the key is absent (a present key of the wrong type is still an error).
  Result<uint64_t> get_uint_or(std::string_view key, uint64_t fallback) const;
  Result<double> get_float_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;
  Result<std::string> get_string_or(std::string_view key, std::string fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  class Cursor;  // bounds-checked reader over the image, defined in gguf_file.cc

  GgufFile() = default;
  Status parse();
  Status parse_kv(Cursor& c, uint64_t index, uint64_t count);
  Status parse_tensor_info(Cursor& c, uint64_t index, uint64_t count);
  Result<ArrayValue> parse_array(Cursor& c, const std::string& what);
  Status check_tensor_data();
  Status set_alignment(const KeyValue& kv, uint64_t at);
  Result<const KeyValue*> lookup(std::string_view key) const;  // error when absent
  Status type_error(const KeyValue& kv, std::string_view expected) const;

  std::string name_;
  std::unique_ptr<MappedFile> mapping_;
  std::vector<uint8_t> owned_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  // Keys and tensor names are views into the file image, which never moves.
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace ll::gguf
