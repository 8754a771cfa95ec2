#include "gguf/gguf_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "core/check.h"

namespace ll::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is written in host order, which must be little-endian");

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian u32
constexpr uint32_t kVersion = 3;

// resize + memcpy rather than insert(): GCC 12 at -O3 warns falsely (-Wstringop-overflow) on
// small inserts into a byte vector.
void append_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
  append_bytes(out, &v, sizeof v);
}

void append_type(std::vector<uint8_t>& out, ValueType t) { append(out, static_cast<uint32_t>(t)); }

void append_string(std::vector<uint8_t>& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  append_bytes(out, s.data(), s.size());
}

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

template <typename T>
std::vector<uint8_t> encode_scalar(ValueType t, T v) {
  std::vector<uint8_t> out;
  append_type(out, t);
  append(out, v);
  return out;
}

template <typename T>
std::vector<uint8_t> encode_numeric_array(ValueType elem, const std::vector<T>& v) {
  std::vector<uint8_t> out;
  append_type(out, ValueType::ARRAY);
  append_type(out, elem);
  append<uint64_t>(out, v.size());
  append_bytes(out, v.data(), v.size() * sizeof(T));
  return out;
}

// Integer value of an encoded scalar (type + value); nullopt for other types.
std::optional<int64_t> decode_integer(const std::vector<uint8_t>& enc) {
  uint32_t type = 0;
  std::memcpy(&type, enc.data(), 4);
  const uint8_t* v = enc.data() + 4;
  auto load = [v](auto zero) {
    decltype(zero) x;
    std::memcpy(&x, v, sizeof x);
    return x;
  };
  switch (static_cast<ValueType>(type)) {
    case ValueType::U8:
      return load(uint8_t{});
    case ValueType::I8:
      return load(int8_t{});
    case ValueType::U16:
      return load(uint16_t{});
    case ValueType::I16:
      return load(int16_t{});
    case ValueType::U32:
      return load(uint32_t{});
    case ValueType::I32:
      return load(int32_t{});
    // Values past int64 are invalid alignments either way; saturate to keep them invalid.
    case ValueType::U64:
      return static_cast<int64_t>(std::min<uint64_t>(load(uint64_t{}), INT64_MAX));
    case ValueType::I64:
      return load(int64_t{});
    default:
      return std::nullopt;
  }
}

}  // namespace

void GgufWriter::put(std::string_view key, std::vector<uint8_t> encoded) {
  for (auto& [k, v] : kvs_) {
    if (k == key) {
      v = std::move(encoded);
      return;
    }
  }
  kvs_.emplace_back(std::string(key), std::move(encoded));
}

void GgufWriter::set_uint32(std::string_view key, uint32_t v) { put(key, encode_scalar(ValueType::U32, v)); }
void GgufWriter::set_int32(std::string_view key, int32_t v) { put(key, encode_scalar(ValueType::I32, v)); }
void GgufWriter::set_uint64(std::string_view key, uint64_t v) { put(key, encode_scalar(ValueType::U64, v)); }
void GgufWriter::set_float32(std::string_view key, float v) { put(key, encode_scalar(ValueType::F32, v)); }
void GgufWriter::set_bool(std::string_view key, bool v) { put(key, encode_scalar(ValueType::BOOL, uint8_t{v})); }

void GgufWriter::set_string(std::string_view key, std::string_view v) {
  std::vector<uint8_t> out;
  append_type(out, ValueType::STRING);
  append_string(out, v);
  put(key, std::move(out));
}

void GgufWriter::set_string_array(std::string_view key, const std::vector<std::string>& v) {
  std::vector<uint8_t> out;
  append_type(out, ValueType::ARRAY);
  append_type(out, ValueType::STRING);
  append<uint64_t>(out, v.size());
  for (const std::string& s : v) append_string(out, s);
  put(key, std::move(out));
}

void GgufWriter::set_float32_array(std::string_view key, const std::vector<float>& v) {
  put(key, encode_numeric_array(ValueType::F32, v));
}

void GgufWriter::set_int32_array(std::string_view key, const std::vector<int32_t>& v) {
  put(key, encode_numeric_array(ValueType::I32, v));
}

void GgufWriter::copy_kv(const KeyValue& kv) {
  std::vector<uint8_t> out;
  append_type(out, kv.type);
  switch (kv.type) {
    case ValueType::U8:
      append(out, static_cast<uint8_t>(std::get<uint64_t>(kv.value)));
      break;
    case ValueType::U16:
      append(out, static_cast<uint16_t>(std::get<uint64_t>(kv.value)));
      break;
    case ValueType::U32:
      append(out, static_cast<uint32_t>(std::get<uint64_t>(kv.value)));
      break;
    case ValueType::U64:
      append(out, std::get<uint64_t>(kv.value));
      break;
    case ValueType::I8:
      append(out, static_cast<int8_t>(std::get<int64_t>(kv.value)));
      break;
    case ValueType::I16:
      append(out, static_cast<int16_t>(std::get<int64_t>(kv.value)));
      break;
    case ValueType::I32:
      append(out, static_cast<int32_t>(std::get<int64_t>(kv.value)));
      break;
    case ValueType::I64:
      append(out, std::get<int64_t>(kv.value));
      break;
    case ValueType::F32:
      append(out, static_cast<float>(std::get<double>(kv.value)));
      break;
    case ValueType::F64:
      append(out, std::get<double>(kv.value));
      break;
    case ValueType::BOOL:
      append(out, uint8_t{std::get<bool>(kv.value)});
      break;
    case ValueType::STRING:
      append_string(out, std::get<std::string_view>(kv.value));
      break;
    case ValueType::ARRAY: {
      const auto& a = std::get<ArrayValue>(kv.value);
      append_type(out, a.elem_type);
      append<uint64_t>(out, a.count);
      if (a.elem_type == ValueType::STRING) {
        for (std::string_view s : a.strings) append_string(out, s);
      } else {
        append_bytes(out, a.data, a.count * value_type_size(a.elem_type));
      }
      break;
    }
  }
  put(kv.key, std::move(out));
}

void GgufWriter::add_tensor(std::string_view name, DType type, std::vector<int64_t> dims, const void* data,
                            size_t nbytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  add(Tensor{std::string(name), type, std::move(dims), std::vector<uint8_t>(p, p + nbytes), nullptr, nbytes});
}

void GgufWriter::add_tensor_ref(std::string_view name, DType type, std::vector<int64_t> dims, const void* data,
                                size_t nbytes) {
  add(Tensor{std::string(name), type, std::move(dims), {}, data, nbytes});
}

// Tensors come from our own code (converters, tests), so a malformed one is a bug, not input.
void GgufWriter::add(Tensor t) {
  for (const Tensor& other : tensors_) LL_CHECK(other.name != t.name);
  LL_CHECK(!t.dims.empty() && t.dims.size() <= kMaxDims);
  const DTypeInfo& info = dtype_info(t.type);
  int64_t n = 1;
  for (int64_t d : t.dims) {
    LL_CHECK(d >= 1);
    LL_CHECK(!__builtin_mul_overflow(n, d, &n));
  }
  LL_CHECK(t.dims[0] % info.block_elems == 0);
  int64_t expected = 0;
  LL_CHECK(!__builtin_mul_overflow(n / info.block_elems, info.block_bytes, &expected));
  LL_CHECK(static_cast<uint64_t>(expected) == t.nbytes);
  tensors_.push_back(std::move(t));
}

Result<uint64_t> GgufWriter::alignment() const {
  for (const auto& [key, enc] : kvs_) {
    if (key != "general.alignment") continue;
    const std::optional<int64_t> v = decode_integer(enc);
    if (!v) return Status::Error("general.alignment must be an unsigned integer");
    if (*v <= 0 || !std::has_single_bit(static_cast<uint64_t>(*v)) || static_cast<uint64_t>(*v) > kMaxAlignment) {
      return Status::Errorf("general.alignment must be a nonzero power of two up to {}, got {}", kMaxAlignment, *v);
    }
    return static_cast<uint64_t>(*v);
  }
  return kDefaultAlignment;
}

// Layout: see GgufFile::parse. Tensor data follows in order, each padded to the alignment.
std::vector<uint8_t> GgufWriter::encode_header(uint64_t alignment) const {
  std::vector<uint8_t> out;
  append(out, kMagic);
  append(out, kVersion);
  append<uint64_t>(out, tensors_.size());
  append<uint64_t>(out, kvs_.size());
  for (const auto& [key, enc] : kvs_) {
    append_string(out, key);
    append_bytes(out, enc.data(), enc.size());
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    append_string(out, t.name);
    append<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) append(out, d);
    append(out, static_cast<uint32_t>(t.type));
    append(out, offset);
    offset += align_up(t.nbytes, alignment);
  }
  out.resize(align_up(out.size(), alignment), 0);
  return out;
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  Result<uint64_t> alignment_or = alignment();
  LL_CHECK(alignment_or.ok() && "to_bytes() with an invalid general.alignment");
  const uint64_t alignment = alignment_or.value();
  std::vector<uint8_t> out = encode_header(alignment);
  uint64_t total = out.size();
  for (const Tensor& t : tensors_) total += align_up(t.nbytes, alignment);
  out.reserve(total);
  for (const Tensor& t : tensors_) {
    append_bytes(out, t.bytes(), t.nbytes);
    out.resize(align_up(out.size(), alignment), 0);
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  Result<uint64_t> alignment_or = alignment();
  if (!alignment_or.ok()) return Status::Errorf("{}: {}", path, alignment_or.error());
  const uint64_t alignment = alignment_or.value();

  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (f == nullptr) return Status::Errorf("{}: cannot create: {}", tmp, std::strerror(errno));
  auto fail = [&](std::string_view what) {
    const int err = errno;
    f.reset();
    std::remove(tmp.c_str());
    return Status::Errorf("{}: {}: {}", path, what, std::strerror(err));
  };
  auto write_bytes = [&](const void* p, uint64_t n) { return n == 0 || std::fwrite(p, 1, n, f.get()) == n; };
  static constexpr std::array<uint8_t, 4096> kZeros{};
  auto write_zeros = [&](uint64_t n) {
    for (uint64_t chunk; n > 0; n -= chunk) {
      chunk = std::min<uint64_t>(n, kZeros.size());
      if (!write_bytes(kZeros.data(), chunk)) return false;
    }
    return true;
  };

  const std::vector<uint8_t> header = encode_header(alignment);
  if (!write_bytes(header.data(), header.size())) return fail("write failed");
  for (const Tensor& t : tensors_) {
    if (!write_bytes(t.bytes(), t.nbytes) || !write_zeros(align_up(t.nbytes, alignment) - t.nbytes)) {
      return fail(fmt::format("write failed in tensor '{}'", t.name));
    }
  }
  if (std::fclose(f.release()) != 0) return fail("write failed");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename the temporary file into place");
  return Status::Ok();
}

}  // namespace ll::gguf
