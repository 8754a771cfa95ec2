// The GGUF reader on broken and hostile input: every truncation, flipped header bytes and
// hand-made absurd values give a one-line error (or a consistent parse), never a crash or
// a large allocation.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

// The largest single allocation since the last reset: a bogus count must never turn into a
// big reserve(). The array forms forward to these.
static std::atomic<size_t> g_largest_allocation{0};

// GCC cannot see that these free() calls pair with the malloc() in operator new below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(size_t n) {
  size_t prev = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > prev && !g_largest_allocation.compare_exchange_weak(prev, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace ll::gguf {
namespace {

constexpr size_t kMaxAllocation = 1 << 20;  // the images here are a few KB
constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kF64 = 28;

// Parses `bytes` as "x.gguf"; checks the error shape and the allocation bound.
Result<std::unique_ptr<GgufFile>> parse(std::vector<uint8_t> bytes) {
  g_largest_allocation = 0;
  auto r = GgufFile::from_bytes(std::move(bytes), "x.gguf");
  EXPECT_LT(g_largest_allocation.load(), kMaxAllocation);
  if (!r.ok()) {
    EXPECT_EQ(r.error().rfind("x.gguf: ", 0), 0u) << r.error();
    EXPECT_EQ(r.error().find('\n'), std::string::npos) << r.error();
  }
  return r;
}

// Expects an error containing every one of `words`; returns it.
std::string expect_error(std::vector<uint8_t> bytes, std::initializer_list<std::string_view> words) {
  auto r = parse(std::move(bytes));
  if (r.ok()) {
    ADD_FAILURE() << "parsed, expected an error with '" << *words.begin() << "'";
    return "";
  }
  for (std::string_view w : words)
    EXPECT_NE(r.error().find(w), std::string::npos) << "'" << w << "' not in: " << r.error();
  return r.error();
}

// A GGUF image written by hand, field by field.
struct Image {
  std::vector<uint8_t> b;
  template <typename T>
  Image& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Image& u32(uint32_t v) { return put(v); }
  Image& u64(uint64_t v) { return put(v); }
  Image& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Image& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  Image& pad(size_t alignment = 32) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    return *this;
  }
  Image& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Image& tensor(std::string_view name, const std::vector<int64_t>& dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (int64_t d : dims) put(d);
    return u32(type).u64(offset);
  }
};

Image header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Image i;
  i.u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  return i;
}

// ~600 bytes: scalars of several types, arrays, three tensors; the last one ends unpadded-size.
std::vector<uint8_t> small_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_uint32("general.alignment", 32);
  w.set_uint32("llama.block_count", 2);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>",
                                               "\xE2\x96\x81"
                                               "a"});
  w.set_float32_array("tokenizer.ggml.scores", {0, 0, 0, -1.5f});
  w.set_int32_array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  std::vector<uint8_t> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i + 1);
  w.add_tensor("token_embd.weight", DType::F32, {4, 4}, data.data(), 64);
  w.add_tensor("output_norm.weight", DType::F16, {4}, data.data(), 8);
  w.add_tensor("blk.0.attn_q.weight", DType::Q8_0, {32}, data.data(), 34);
  return w.to_bytes();
}

uint64_t data_end(const GgufFile& f) {
  uint64_t end = 0;
  for (const TensorInfo& t : f.tensors()) end = std::max(end, f.data_offset() + t.offset + t.nbytes);
  return end;
}

// A file that parsed must be usable: tensors inside it, every getter safe, and re-encoding
// what was read gives a file that parses to the same counts.
void expect_consistent(const GgufFile& f) {
  for (const TensorInfo& t : f.tensors()) {
    ASSERT_EQ(t.offset % f.alignment(), 0u);
    ASSERT_GE(t.data, f.base() + f.data_offset());
    ASSERT_LE(t.data + t.nbytes, f.base() + f.file_size());
    ASSERT_EQ(static_cast<int64_t>(t.nbytes), row_bytes(t.type, t.n_elements));
  }
  GgufWriter w;
  for (const KeyValue& kv : f.metadata()) {
    (void)f.get_uint(kv.key), (void)f.get_int(kv.key), (void)f.get_float(kv.key), (void)f.get_bool(kv.key);
    (void)f.get_string(kv.key), (void)f.get_string_array(kv.key), (void)f.get_float_array(kv.key);
    (void)f.get_int_array(kv.key);
    w.copy_kv(kv);
  }
  for (const TensorInfo& t : f.tensors()) w.add_tensor_ref(t.name, t.type, t.dims, t.data, t.nbytes);
  auto again = GgufFile::from_bytes(w.to_bytes(), "again.gguf");
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ((*again)->metadata().size(), f.metadata().size());
  EXPECT_EQ((*again)->tensors().size(), f.tensors().size());
}

TEST(GgufBadInput, AllocationProbeWorks) {
  g_largest_allocation = 0;
  void* p = ::operator new(2 * kMaxAllocation);  // a direct call, which cannot be elided
  ::operator delete(p);
  EXPECT_GE(g_largest_allocation.load(), 2 * kMaxAllocation);
}

TEST(GgufBadInput, EveryTruncation) {
  const std::vector<uint8_t> full = small_file();
  auto good = parse(full);
  ASSERT_TRUE(good.ok()) << good.error();
  const uint64_t end = data_end(**good);
  ASSERT_GT(end, (*good)->data_offset());
  for (size_t n = 0; n < full.size(); ++n) {
    auto r = parse(std::vector<uint8_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    // Only the zero padding after the last tensor may be cut.
    EXPECT_EQ(r.ok(), n >= end) << "prefix " << n << ": " << (r.ok() ? "parsed" : r.error());
  }
}

TEST(GgufBadInput, FlippedHeaderBytes) {
  const std::vector<uint8_t> full = small_file();
  auto good = parse(full);
  ASSERT_TRUE(good.ok());
  const uint64_t header_bytes = (*good)->data_offset();
  int errors = 0, parsed = 0;
  for (uint64_t i = 0; i < header_bytes; ++i) {
    const uint8_t b = full[i];
    for (uint8_t v :
         {uint8_t(b ^ 0x01), uint8_t(b ^ 0x80), uint8_t(b ^ 0xFF), uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x7F}}) {
      if (v == b) continue;
      std::vector<uint8_t> bytes = full;
      bytes[i] = v;
      auto r = parse(std::move(bytes));
      if (r.ok()) {
        ++parsed;
        expect_consistent(**r);
      } else {
        ++errors;
      }
      if (testing::Test::HasFatalFailure()) FAIL() << "byte " << i << " set to " << int{v};
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(parsed, 0);  // flips inside string contents and float values still parse
}

TEST(GgufBadInput, Magic) {
  EXPECT_EQ(expect_error({}, {"truncated at byte 0 while reading the magic"}),
            "x.gguf: truncated at byte 0 while reading the magic (4 bytes needed, 0 left)");
  EXPECT_EQ(expect_error({0x7f, 'E', 'L', 'F', 2, 1, 1, 0}, {}), "x.gguf: not a GGUF file (magic 0x464c457f)");
  expect_error({'G', 'G', 'U', 'F', 3, 0}, {"truncated at byte 4 while reading the version"});
}

TEST(GgufBadInput, Versions) {
  expect_error(header(0, 0, 1).b, {"GGUF version 1 is not supported"});
  expect_error(header(0, 0, 4).b, {"unsupported GGUF version 4"});
  expect_error(header(0, 0, 0x03000000).b, {"big-endian"});
  for (uint32_t v : {2u, 3u}) {
    auto r = parse(header(0, 0, v).b);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ((*r)->version(), v);
  }
}

TEST(GgufBadInput, ImpossibleCounts) {
  expect_error(header(0, uint64_t{1} << 62).zeros(64).b,
               {"metadata count 4611686018427387904 at byte 16 is impossible"});
  expect_error(header(uint64_t{1} << 62, 0).zeros(64).b, {"tensor count 4611686018427387904 at byte 8 is impossible"});
  expect_error(header(0, uint64_t{1} << 40).zeros(64).b, {"metadata count 1099511627776"});
  // Counts that fit the bytes but whose entries are not there are truncations.
  Image i = header(0, 2);
  i.kv_u32("a", 1).str("bb").zeros(2);
  EXPECT_EQ(expect_error(i.b, {}),
            "x.gguf: truncated at byte 51 while reading the value type of metadata entry 2 of 2 (key 'bb') "
            "(4 bytes needed, 2 left)");
}

TEST(GgufBadInput, HugeStringLengths) {
  EXPECT_EQ(expect_error(header(0, 1).u64(uint64_t{1} << 63).zeros(20).b, {}),
            "x.gguf: truncated at byte 24 while reading the key of metadata entry 1 of 1 "
            "(a string of 9223372036854775808 bytes, 20 left)");
  expect_error(
      header(0, 1).str("k").u32(8).u64(uint64_t{1} << 63).zeros(20).b,
      {"truncated at byte 37 while reading the value of metadata entry 1 of 1 (key 'k')", "9223372036854775808"});
  // The third key claims more bytes than are left.
  Image i = header(0, 3);
  i.kv_u32("a", 1).kv_u32("b", 2).u64(100).zeros(40);
  expect_error(
      i.b, {"truncated at byte 58 while reading the key of metadata entry 3 of 3 (a string of 100 bytes, 40 left)"});
  expect_error(header(1, 0).u64(uint64_t{1} << 63).zeros(40).b, {"while reading the name of tensor info 1 of 1"});
}

TEST(GgufBadInput, HugeArrays) {
  expect_error(header(0, 1).str("a").u32(9).u32(4).u64(uint64_t{1} << 60).zeros(64).b,
               {"an array of 1152921504606846976 u32 elements", "key 'a'"});
  expect_error(header(0, 1).str("a").u32(9).u32(8).u64(uint64_t{1} << 60).zeros(64).b,
               {"an array of 1152921504606846976 strings"});
  expect_error(header(0, 1).str("a").u32(9).u32(12).u64(~uint64_t{0}).zeros(64).b, {"f64 elements"});
  // A string inside an array that runs past the end.
  expect_error(header(0, 1).str("a").u32(9).u32(8).u64(2).str("ok").u64(1000).zeros(16).b,
               {"string 2 of 2 in the value of metadata entry 1 of 1 (key 'a')"});
}

TEST(GgufBadInput, BadValueTypes) {
  expect_error(header(0, 1).str("k").u32(13).zeros(16).b, {"unknown value type 13", "key 'k'"});
  expect_error(header(0, 1).str("k").u32(9).u32(77).u64(0).zeros(16).b, {"unknown array element type 77"});
  expect_error(header(0, 1).str("nested").u32(9).u32(9).u64(1).u32(4).u64(1).u32(5).zeros(16).b,
               {"key 'nested'", "array of arrays, which is not supported"});
  expect_error(header(0, 1).str("b").u32(7).put(uint8_t{2}).zeros(16).b, {"bool value 2", "neither 0 nor 1"});
  // Names are escaped so that the error stays on one line.
  expect_error(header(0, 1).str("a\nb").u32(13).zeros(16).b, {"key 'a\\x0ab'"});
}

TEST(GgufBadInput, DuplicateKey) {
  Image i = header(0, 2);
  i.kv_u32("k", 1).kv_u32("k", 2);
  expect_error(i.b, {"duplicate key 'k' at byte 41 (metadata entry 2 of 2)"});
}

TEST(GgufBadInput, Alignment) {
  for (uint32_t a : {0u, 3u, 48u, 0x80000000u}) {
    Image i = header(0, 1);
    i.kv_u32("general.alignment", a);
    expect_error(i.b, {"general.alignment", "power of two", "got " + std::to_string(a)});
  }
  Image s = header(0, 1);
  s.str("general.alignment").u32(8).str("32");
  expect_error(s.b, {"general.alignment", "is a string, expected an unsigned integer"});
  Image ok = header(1, 1);
  ok.kv_u32("general.alignment", 64).tensor("t", {4}, kF32, 0).pad(64).zeros(16);
  auto r = parse(ok.b);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->alignment(), 64u);
  EXPECT_EQ((*r)->data_offset(), 128u);
}

TEST(GgufBadInput, TensorShapes) {
  Image seven = header(1, 0);
  seven.tensor("t", {1, 1, 1, 1, 1, 1, 1}, kF32, 0).pad().zeros(32);
  expect_error(seven.b, {"tensor 't' (tensor info 1 of 1, at byte 24) has 7 dimensions; 1 to 4 are supported"});
  Image none = header(1, 0);
  none.tensor("t", {}, kF32, 0).pad().zeros(32);
  expect_error(none.b, {"has 0 dimensions"});
  Image overflow = header(1, 0);
  overflow.tensor("t", {int64_t{1} << 32, int64_t{1} << 32}, kF32, 0).pad().zeros(32);
  expect_error(overflow.b, {"dims [4294967296, 4294967296] whose element count overflows int64"});
  Image bytes_overflow = header(1, 0);
  bytes_overflow.tensor("t", {int64_t{1} << 31, int64_t{1} << 31}, kF64, 0).pad().zeros(32);
  expect_error(bytes_overflow.b, {"is too large"});
  Image zero = header(1, 0);
  zero.tensor("t", {4, 0}, kF32, 0).pad().zeros(32);
  expect_error(zero.b, {"dims[1] = 0; every dimension must be at least 1"});
  Image negative = header(1, 0);
  negative.tensor("t", {-5}, kF32, 0).pad().zeros(32);
  expect_error(negative.b, {"dims[0] = -5"});
  Image block = header(1, 0);
  block.tensor("t", {33}, kQ4_0, 0).pad().zeros(64);
  expect_error(block.b, {"type Q4_0 with dims[0] = 33, not a multiple of its block size 32"});
  Image type = header(1, 0);
  type.tensor("t", {4}, 99, 0).pad().zeros(32);
  expect_error(type.b, {"tensor 't'", "unknown type id 99"});
}

TEST(GgufBadInput, TensorOffsets) {
  // Header 24 + 33 per tensor info: the data starts at 64 (one tensor) or 96 (two).
  Image past = header(1, 0);
  past.tensor("t", {8}, kF32, 0).pad().zeros(16);
  EXPECT_EQ(expect_error(past.b, {}), "x.gguf: tensor 't' data ends at byte 96, past the end of the file (80)");
  Image far = header(1, 0);
  far.tensor("t", {8}, kF32, ~uint64_t{31}).pad().zeros(32);
  expect_error(far.b, {"data ends at byte 18446744073709551680, past the end of the file (96)"});
  Image misaligned = header(1, 0);
  misaligned.tensor("t", {8}, kF32, 4).pad().zeros(64);
  EXPECT_EQ(expect_error(misaligned.b, {}), "x.gguf: tensor 't' data offset 4 is not a multiple of the alignment 32");
  Image fits = header(2, 0);
  fits.tensor("a", {8}, kF32, 0).tensor("b", {4}, kF16, 32).pad().zeros(40);
  auto r = parse(fits.b);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ((*r)->find_tensor("b")->data, (*r)->base() + 96 + 32);
}

TEST(GgufBadInput, DuplicateTensorName) {
  Image i = header(2, 0);
  i.tensor("t", {8}, kF32, 0).tensor("t", {8}, kF32, 32).pad().zeros(64);
  expect_error(i.b, {"duplicate tensor name 't' at byte 57 (tensor info 2 of 2)"});
}

TEST(GgufBadInput, OpenErrors) {
  auto missing = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("/nonexistent/model.gguf"), std::string::npos);
  auto dir = GgufFile::open("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace ll::gguf
