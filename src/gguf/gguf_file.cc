#include "gguf/gguf_file.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace ll::gguf {
namespace {

// Values are read in place from the mapping; GGUF is little-endian.
static_assert(std::endian::native == std::endian::little, "GGUF values are read in place as little-endian");

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kLastValueType = static_cast<uint32_t>(ValueType::F64);
// Smallest encodings, so that counts the remaining bytes cannot hold are refused up front.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // empty key, type, a u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one dim, type, offset
constexpr uint64_t kMinStringBytes = 8;                      // the length of an empty string
// Reservations are a speed hint only; entries that really exist grow the vectors.
constexpr uint64_t kMaxReserve = 4096;

constexpr std::string_view kTypeNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                           "bool", "string", "array", "u64", "i64", "f64"};
constexpr size_t kTypeSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
      return true;
    default:
      return false;
  }
}

bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}

// Element i of a numeric array, widened like scalar values are.
int64_t load_signed(const ArrayValue& a, uint64_t i) {
  const uint8_t* p = a.data + i * value_type_size(a.elem_type);
  switch (a.elem_type) {
    case ValueType::I8:
      return load<int8_t>(p);
    case ValueType::I16:
      return load<int16_t>(p);
    case ValueType::I32:
      return load<int32_t>(p);
    default:
      return load<int64_t>(p);
  }
}

uint64_t load_unsigned(const ArrayValue& a, uint64_t i) {
  const uint8_t* p = a.data + i * value_type_size(a.elem_type);
  switch (a.elem_type) {
    case ValueType::U8:
      return load<uint8_t>(p);
    case ValueType::U16:
      return load<uint16_t>(p);
    case ValueType::U32:
      return load<uint32_t>(p);
    default:
      return load<uint64_t>(p);
  }
}

// "a u32", "an i32", "an array of string": a type as it reads in a sentence.
std::string with_article(std::string_view type) {
  const bool vowel_sound = type[0] == 'i' || type[0] == 'f' || type[0] == 'a';
  return fmt::format("{} {}", vowel_sound ? "an" : "a", type);
}

std::string describe(const KeyValue& kv) {
  if (kv.type != ValueType::ARRAY) return with_article(value_type_name(kv.type));
  return fmt::format("an array of {}", value_type_name(std::get<ArrayValue>(kv.value).elem_type));
}

// Keys and names come from the file: escape them so that an error stays one printable line.
std::string printable(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x20 || ch == 0x7f || ch == '\'' || ch == '\\') {
      out += fmt::format("\\x{:02x}", ch);
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  const auto i = static_cast<uint32_t>(t);
  return i <= kLastValueType ? kTypeNames[i] : "unknown";
}

size_t value_type_size(ValueType t) {
  const auto i = static_cast<uint32_t>(t);
  return i <= kLastValueType ? kTypeSizes[i] : 0;
}

// Reads forward through the image. Nothing is read before need() has confirmed that the
// bytes exist; `what` describes the item for the error and is only evaluated on failure.
class GgufFile::Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& name) : data_(data), size_(size), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  template <typename What>
  Status need(uint64_t n, const What& what) const {
    if (n <= left()) return Status::Ok();
    return Status::Errorf("{}: truncated at byte {} while reading {} ({} bytes needed, {} left)", name_, pos_, what(),
                          n, left());
  }

  template <typename T>
  T take() {
    T v = load<T>(data_ + pos_);
    pos_ += sizeof(T);
    return v;
  }

  const uint8_t* take_bytes(uint64_t n) {
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

  // A GGUF string: u64 length, then the bytes (not NUL-terminated).
  template <typename What>
  Result<std::string_view> string(const What& what) {
    const uint64_t start = pos_;
    LL_RETURN_IF_ERROR(need(8, what));
    const auto len = take<uint64_t>();
    if (len > left()) {
      return Status::Errorf("{}: truncated at byte {} while reading {} (a string of {} bytes, {} left)", name_, start,
                            what(), len, left());
    }
    return std::string_view(reinterpret_cast<const char*>(take_bytes(len)), len);
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
};

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  LL_ASSIGN_OR_RETURN(auto mapping, MappedFile::open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  f->base_ = mapping->data();
  f->size_ = mapping->size();
  f->mapping_ = std::move(mapping);
  LL_RETURN_IF_ERROR(f->parse());
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = std::move(name);
  f->owned_ = std::move(bytes);
  f->base_ = f->owned_.data();
  f->size_ = f->owned_.size();
  LL_RETURN_IF_ERROR(f->parse());
  return f;
}

// Layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × { string key | u32 type | value }
//   n_tensors × { string name | u32 n_dims | i64 dims[n_dims] | u32 type | u64 offset }
//   padding to general.alignment | tensor data (offsets relative to here)
Status GgufFile::parse() {
  Cursor c(base_, size_, name_);
  LL_RETURN_IF_ERROR(c.need(4, [] { return "the magic"; }));
  const auto magic = c.take<uint32_t>();
  if (magic != kMagic) return Status::Errorf("{}: not a GGUF file (magic {:#010x})", name_, magic);

  LL_RETURN_IF_ERROR(c.need(4, [] { return "the version"; }));
  version_ = c.take<uint32_t>();
  if (version_ == 1) {
    return Status::Errorf(
        "{}: GGUF version 1 is not supported (only versions 2 and 3); convert it with a newer llama.cpp", name_);
  }
  if (version_ > 0xFFFF && (version_ & 0xFFFF) == 0) {
    return Status::Errorf(
        "{}: GGUF version {:#010x} at byte 4 looks byte-swapped; big-endian GGUF files are not supported", name_,
        version_);
  }
  if (version_ != 2 && version_ != 3) {
    return Status::Errorf("{}: unsupported GGUF version {} at byte 4 (only versions 2 and 3)", name_, version_);
  }

  LL_RETURN_IF_ERROR(c.need(16, [] { return "the tensor and metadata counts"; }));
  const auto n_tensors = c.take<uint64_t>();
  const auto n_kv = c.take<uint64_t>();
  if (n_kv > c.left() / kMinKvBytes) {
    return Status::Errorf(
        "{}: metadata count {} at byte 16 is impossible: each entry takes at least {} bytes and only {} are left",
        name_, n_kv, kMinKvBytes, c.left());
  }
  if (n_tensors > c.left() / kMinTensorInfoBytes) {
    return Status::Errorf(
        "{}: tensor count {} at byte 8 is impossible: each tensor info takes at least {} bytes and only {} are left",
        name_, n_tensors, kMinTensorInfoBytes, c.left());
  }

  kvs_.reserve(std::min(n_kv, kMaxReserve));
  for (uint64_t i = 0; i < n_kv; ++i) LL_RETURN_IF_ERROR(parse_kv(c, i, n_kv));

  tensors_.reserve(std::min(n_tensors, kMaxReserve));
  for (uint64_t i = 0; i < n_tensors; ++i) LL_RETURN_IF_ERROR(parse_tensor_info(c, i, n_tensors));

  // alignment_ <= kMaxAlignment and pos <= size, so this cannot overflow.
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  return check_tensor_data();
}

Status GgufFile::parse_kv(Cursor& c, uint64_t index, uint64_t count) {
  const uint64_t entry_pos = c.pos();
  auto entry = [&] { return fmt::format("metadata entry {} of {}", index + 1, count); };
  LL_ASSIGN_OR_RETURN(const std::string_view key, c.string([&] { return "the key of " + entry(); }));
  auto entry_key = [&] { return fmt::format("{} (key '{}')", entry(), printable(key)); };
  if (kv_index_.count(key) != 0) {
    return Status::Errorf("{}: duplicate key '{}' at byte {} ({})", name_, printable(key), entry_pos, entry());
  }

  LL_RETURN_IF_ERROR(c.need(4, [&] { return "the value type of " + entry_key(); }));
  const uint64_t type_pos = c.pos();
  const auto raw_type = c.take<uint32_t>();
  if (raw_type > kLastValueType) {
    return Status::Errorf("{}: unknown value type {} at byte {} in {}", name_, raw_type, type_pos, entry_key());
  }

  KeyValue kv;
  kv.key = std::string(key);
  kv.type = static_cast<ValueType>(raw_type);
  auto what_value = [&] { return "the value of " + entry_key(); };
  if (kv.type == ValueType::STRING) {
    LL_ASSIGN_OR_RETURN(kv.value, c.string(what_value));
  } else if (kv.type == ValueType::ARRAY) {
    LL_ASSIGN_OR_RETURN(kv.value, parse_array(c, entry_key()));
  } else {
    LL_RETURN_IF_ERROR(c.need(value_type_size(kv.type), what_value));
    const uint64_t value_pos = c.pos();
    switch (kv.type) {
      case ValueType::U8:
        kv.value = uint64_t{c.take<uint8_t>()};
        break;
      case ValueType::U16:
        kv.value = uint64_t{c.take<uint16_t>()};
        break;
      case ValueType::U32:
        kv.value = uint64_t{c.take<uint32_t>()};
        break;
      case ValueType::U64:
        kv.value = c.take<uint64_t>();
        break;
      case ValueType::I8:
        kv.value = int64_t{c.take<int8_t>()};
        break;
      case ValueType::I16:
        kv.value = int64_t{c.take<int16_t>()};
        break;
      case ValueType::I32:
        kv.value = int64_t{c.take<int32_t>()};
        break;
      case ValueType::I64:
        kv.value = c.take<int64_t>();
        break;
      case ValueType::F32:
        kv.value = double{c.take<float>()};
        break;
      case ValueType::F64:
        kv.value = c.take<double>();
        break;
      default: {  // BOOL
        const auto b = c.take<uint8_t>();
        if (b > 1) {
          return Status::Errorf("{}: bool value {} at byte {} in {} is neither 0 nor 1", name_, b, value_pos,
                                entry_key());
        }
        kv.value = b == 1;
      }
    }
  }

  if (key == "general.alignment") LL_RETURN_IF_ERROR(set_alignment(kv, entry_pos));
  kv_index_.emplace(key, kvs_.size());
  kvs_.push_back(std::move(kv));
  return Status::Ok();
}

// Array: u32 element type | u64 count | elements. Arrays of arrays are refused, so there is
// no recursion. `entry` names the metadata entry for errors.
Result<ArrayValue> GgufFile::parse_array(Cursor& c, const std::string& entry) {
  LL_RETURN_IF_ERROR(c.need(12, [&] { return "the array header of " + entry; }));
  const uint64_t array_pos = c.pos();
  const auto raw_elem = c.take<uint32_t>();
  const auto count = c.take<uint64_t>();
  if (raw_elem > kLastValueType) {
    return Status::Errorf("{}: unknown array element type {} at byte {} in {}", name_, raw_elem, array_pos, entry);
  }
  ArrayValue a;
  a.elem_type = static_cast<ValueType>(raw_elem);
  a.count = count;
  if (a.elem_type == ValueType::ARRAY) {
    return Status::Errorf("{}: {} at byte {} is an array of arrays, which is not supported", name_, entry, array_pos);
  }
  if (a.elem_type == ValueType::STRING) {
    if (count > c.left() / kMinStringBytes) {
      return Status::Errorf(
          "{}: truncated at byte {} while reading the value of {} (an array of {} strings, {} bytes left)", name_,
          c.pos(), entry, count, c.left());
    }
    a.strings.reserve(count);  // at most left / 8 views
    for (uint64_t i = 0; i < count; ++i) {
      LL_ASSIGN_OR_RETURN(std::string_view s, c.string([&] {
        return fmt::format("string {} of {} in the value of {}", i + 1, count, entry);
      }));
      a.strings.push_back(s);
    }
    return a;
  }
  const uint64_t elem_size = value_type_size(a.elem_type);
  if (count > c.left() / elem_size) {
    return Status::Errorf(
        "{}: truncated at byte {} while reading the value of {} (an array of {} {} elements, {} bytes left)", name_,
        c.pos(), entry, count, value_type_name(a.elem_type), c.left());
  }
  a.data = c.take_bytes(count * elem_size);
  return a;
}

Status GgufFile::set_alignment(const KeyValue& kv, uint64_t at) {
  if (!is_integer(kv.type)) {
    return Status::Errorf("{}: general.alignment at byte {} is {}, expected an unsigned integer", name_, at,
                          describe(kv));
  }
  const bool negative = std::holds_alternative<int64_t>(kv.value) && std::get<int64_t>(kv.value) < 0;
  const uint64_t v = negative                                    ? 0
                     : std::holds_alternative<int64_t>(kv.value) ? static_cast<uint64_t>(std::get<int64_t>(kv.value))
                                                                 : std::get<uint64_t>(kv.value);
  if (negative || !std::has_single_bit(v) || v > kMaxAlignment) {
    const std::string shown = negative ? std::to_string(std::get<int64_t>(kv.value)) : std::to_string(v);
    return Status::Errorf("{}: general.alignment at byte {} must be a nonzero power of two up to {}, got {}", name_, at,
                          kMaxAlignment, shown);
  }
  alignment_ = v;
  return Status::Ok();
}

Status GgufFile::parse_tensor_info(Cursor& c, uint64_t index, uint64_t count) {
  const uint64_t info_pos = c.pos();
  LL_ASSIGN_OR_RETURN(const std::string_view name,
                      c.string([&] { return fmt::format("the name of tensor info {} of {}", index + 1, count); }));
  auto where = [&] {
    return fmt::format("tensor '{}' (tensor info {} of {}, at byte {})", printable(name), index + 1, count, info_pos);
  };
  if (tensor_index_.count(name) != 0) {
    return Status::Errorf("{}: duplicate tensor name '{}' at byte {} (tensor info {} of {})", name_, printable(name),
                          info_pos, index + 1, count);
  }

  LL_RETURN_IF_ERROR(c.need(4, [&] { return "the dimension count of " + where(); }));
  const auto n_dims = c.take<uint32_t>();
  if (n_dims == 0 || n_dims > kMaxDims) {
    return Status::Errorf("{}: {} has {} dimensions; 1 to {} are supported", name_, where(), n_dims, kMaxDims);
  }
  LL_RETURN_IF_ERROR(c.need(8 * uint64_t{n_dims}, [&] { return "the dimensions of " + where(); }));
  TensorInfo t;
  t.name = std::string(name);
  for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(c.take<int64_t>());
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (t.dims[d] < 1) {
      return Status::Errorf("{}: {} has dims[{}] = {}; every dimension must be at least 1", name_, where(), d,
                            t.dims[d]);
    }
    if (__builtin_mul_overflow(n_elements, t.dims[d], &n_elements)) {
      return Status::Errorf("{}: {} has dims [{}] whose element count overflows int64", name_, where(),
                            fmt::join(t.dims, ", "));
    }
  }
  t.n_elements = n_elements;

  LL_RETURN_IF_ERROR(c.need(4, [&] { return "the type of " + where(); }));
  const auto raw_type = c.take<uint32_t>();
  const std::optional<DTypeInfo> info = dtype_info(raw_type);
  if (!info) return Status::Errorf("{}: {} has unknown type id {}", name_, where(), raw_type);
  t.type = static_cast<DType>(raw_type);
  if (t.dims[0] % info->block_elems != 0) {
    return Status::Errorf("{}: {} has type {} with dims[0] = {}, not a multiple of its block size {}", name_, where(),
                          info->name, t.dims[0], info->block_elems);
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(n_elements / info->block_elems, info->block_bytes, &nbytes)) {
    return Status::Errorf("{}: {} is too large: {} elements of type {} overflow int64 bytes", name_, where(),
                          n_elements, info->name);
  }
  t.nbytes = static_cast<uint64_t>(nbytes);

  LL_RETURN_IF_ERROR(c.need(8, [&] { return "the data offset of " + where(); }));
  t.offset = c.take<uint64_t>();
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

Status GgufFile::check_tensor_data() {
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment_ != 0) {
      return Status::Errorf("{}: tensor '{}' data offset {} is not a multiple of the alignment {}", name_,
                            printable(t.name), t.offset, alignment_);
    }
    // 128 bits: offset and nbytes come from the file and may be near 2^64.
    const unsigned __int128 end = static_cast<unsigned __int128>(data_offset_) + t.offset + t.nbytes;
    if (end > size_) {
      return Status::Errorf("{}: tensor '{}' data ends at byte {}, past the end of the file ({})", name_,
                            printable(t.name), end, size_);
    }
    t.data = base_ + data_offset_ + t.offset;
  }
  return Status::Ok();
}

const KeyValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}


Result<const KeyValue*> GgufFile::lookup(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return Status::Errorf("{}: missing key '{}'", name_, printable(key));
  return kv;
}

Status GgufFile::type_error(const KeyValue& kv, std::string_view expected) const {
  return Status::Errorf("{}: key '{}' is {}, expected {}", name_, printable(kv.key), describe(kv), expected);
}

Result<uint64_t> GgufFile::get_uint(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (!is_integer(kv->type)) return type_error(*kv, "an integer");
  if (const auto* u = std::get_if<uint64_t>(&kv->value)) return *u;
  const int64_t v = std::get<int64_t>(kv->value);
  if (v < 0) {
    return Status::Errorf("{}: key '{}' is negative ({}), expected a non-negative integer", name_, printable(kv->key),
                          v);
  }
  return static_cast<uint64_t>(v);
}

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (!is_integer(kv->type)) return type_error(*kv, "an integer");
  if (const auto* s = std::get_if<int64_t>(&kv->value)) return *s;
  const uint64_t v = std::get<uint64_t>(kv->value);
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::Errorf("{}: key '{}' is {}, which does not fit in int64", name_, printable(kv->key), v);
  }
  return static_cast<int64_t>(v);
}

Result<double> GgufFile::get_float(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (const auto* d = std::get_if<double>(&kv->value)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&kv->value)) return static_cast<double>(*u);
  if (const auto* s = std::get_if<int64_t>(&kv->value)) return static_cast<double>(*s);
  return type_error(*kv, "a number");
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (kv->type != ValueType::BOOL) return type_error(*kv, "a bool");
  return std::get<bool>(kv->value);
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (kv->type != ValueType::STRING) return type_error(*kv, "a string");
  return std::string(std::get<std::string_view>(kv->value));
}

Result<std::vector<std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  if (kv->type != ValueType::ARRAY || std::get<ArrayValue>(kv->value).elem_type != ValueType::STRING) {
    return type_error(*kv, "an array of string");
  }
  return std::get<ArrayValue>(kv->value).strings;
}

Result<std::vector<float>> GgufFile::get_float_array(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  const ArrayValue* a = std::get_if<ArrayValue>(&kv->value);
  if (a == nullptr || (a->elem_type != ValueType::F32 && a->elem_type != ValueType::F64)) {
    return type_error(*kv, "an array of f32");
  }
  std::vector<float> out(a->count);  // the elements are in the file, so count is bounded by its size
  for (uint64_t i = 0; i < a->count; ++i) {
    out[i] = a->elem_type == ValueType::F32 ? load<float>(a->data + 4 * i)
                                            : static_cast<float>(load<double>(a->data + 8 * i));
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  LL_ASSIGN_OR_RETURN(const KeyValue* kv, lookup(key));
  const ArrayValue* a = std::get_if<ArrayValue>(&kv->value);
  if (a == nullptr || !is_integer(a->elem_type)) return type_error(*kv, "an array of integers");
  std::vector<int64_t> out(a->count);
  for (uint64_t i = 0; i < a->count; ++i) {
    if (is_signed(a->elem_type)) {
      out[i] = load_signed(*a, i);
      continue;
    }
    const uint64_t v = load_unsigned(*a, i);
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::Errorf("{}: element {} of key '{}' is {}, which does not fit in int64", name_, i,
                            printable(kv->key), v);
    }
    out[i] = static_cast<int64_t>(v);
  }
  return out;
}

Result<uint64_t> GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  return find(key) == nullptr ? Result<uint64_t>(fallback) : get_uint(key);
}

Result<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  return find(key) == nullptr ? Result<double>(fallback) : get_float(key);
}

Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return find(key) == nullptr ? Result<bool>(fallback) : get_bool(key);
}

Result<std::string> GgufFile::get_string_or(std::string_view key, std::string fallback) const {
  return find(key) == nullptr ? Result<std::string>(std::move(fallback)) : get_string(key);
}

}  // namespace ll::gguf
