// Block layouts, half-precision conversions, dequantization of hand-made blocks and the
// error of quantize -> dequantize round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/quant_blocks.h"
#include "kernels/quantize.h"

namespace ll::kernels {
namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(QuantBlocksTest, SizesMatchGgml) {
  EXPECT_EQ(sizeof(BlockQ4_0), 18u);
  EXPECT_EQ(sizeof(BlockQ8_0), 34u);
  EXPECT_EQ(sizeof(BlockQ4_K), 144u);
  EXPECT_EQ(sizeof(BlockQ6_K), 210u);
  EXPECT_EQ(sizeof(BlockQ8_K), 292u);
  EXPECT_EQ(sizeof(BlockQ5_K), 176u);
  EXPECT_EQ(sizeof(BlockQ3_K), 110u);
  EXPECT_EQ(sizeof(BlockQ2_K), 84u);
  EXPECT_EQ(sizeof(BlockIQ4_XS), 136u);
  EXPECT_EQ(dtype_info(DType::Q4_0).block_bytes, static_cast<int64_t>(sizeof(BlockQ4_0)));
  EXPECT_EQ(dtype_info(DType::Q8_0).block_bytes, static_cast<int64_t>(sizeof(BlockQ8_0)));
  EXPECT_EQ(dtype_info(DType::Q4_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ4_K)));
  EXPECT_EQ(dtype_info(DType::Q6_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ6_K)));
  EXPECT_EQ(dtype_info(DType::Q8_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ8_K)));
  for (auto [t, size] : {std::pair{DType::Q4_1, sizeof(BlockQ4_1)}, std::pair{DType::Q5_0, sizeof(BlockQ5_0)},
                         std::pair{DType::Q5_1, sizeof(BlockQ5_1)}, std::pair{DType::IQ4_NL, sizeof(BlockIQ4_NL)},
                         std::pair{DType::Q8_1, sizeof(BlockQ8_1)}}) {
    EXPECT_EQ(dtype_info(t).block_bytes, static_cast<int64_t>(size)) << dtype_name(t);
  }
  EXPECT_EQ(dtype_info(DType::Q5_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ5_K)));
  EXPECT_EQ(dtype_info(DType::Q3_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ3_K)));
  EXPECT_EQ(dtype_info(DType::Q2_K).block_bytes, static_cast<int64_t>(sizeof(BlockQ2_K)));
  EXPECT_EQ(dtype_info(DType::IQ4_XS).block_bytes, static_cast<int64_t>(sizeof(BlockIQ4_XS)));
  EXPECT_TRUE(is_quantized(DType::Q4_K));
  EXPECT_FALSE(is_quantized(DType::F16));
}

// ---------------------------------------------------------------- fp16 / bf16

TEST(Fp16Test, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);                       // largest finite
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);                      // below the midpoint to 65536
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);                       // midpoint: ties to even = inf
  EXPECT_EQ(fp32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);          // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);          // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1023.0f, -24)), 0x03FF);       // largest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);          // tie: to even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);          // tie: to even (2)
  EXPECT_EQ(fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -149)), 0x0000);         // float subnormal
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);   // tie: to even
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);   // tie: to even
  EXPECT_EQ(fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);       // rounds up into the normals

  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x83FF), -std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(to_bits(fp16_to_fp32(0x8000)), 0x80000000u);
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xFC01)));
}

TEST(Fp16Test, NanStaysNan) {
  const uint16_t h = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7C00, 0x7C00);
  EXPECT_NE(h & 0x03FF, 0);
  // A signalling NaN whose payload is only in the low bits must not become infinity.
  const uint16_t s = fp32_to_fp16(from_bits(0x7F800001));
  EXPECT_EQ(s & 0x7C00, 0x7C00);
  EXPECT_NE(s & 0x03FF, 0);
}

TEST(Fp16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), h) << std::hex << h;
  }
}

// fp32 -> fp16 picks the nearest half, ties to the even one, for random floats.
TEST(Fp16Test, RoundsToNearestEven) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits(0, 0x477FEFFF);  // finite, below the overflow edge
  for (int i = 0; i < 200000; ++i) {
    const float f = from_bits(bits(rng));
    const uint16_t h = fp32_to_fp16(f);
    const double err = std::fabs(static_cast<double>(fp16_to_fp32(h)) - f);
    for (int delta : {-1, 1}) {
      const int neighbor = static_cast<int>(h) + delta;
      if (neighbor < 0 || neighbor > 0x7BFF) continue;
      const double other = std::fabs(static_cast<double>(fp16_to_fp32(static_cast<uint16_t>(neighbor))) - f);
      ASSERT_TRUE(err < other || (err == other && (h & 1) == 0)) << f;
    }
  }
}

TEST(Bf16Test, KnownValuesAndTies) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie: to even
  EXPECT_EQ(fp32_to_bf16(from_bits(0x3F808001)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x00008001)), 0x0001);  // subnormals are kept
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // rounds to infinity
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  const uint16_t nan = fp32_to_bf16(from_bits(0x7F800001));
  EXPECT_EQ(nan & 0x7F80, 0x7F80);
  EXPECT_NE(nan & 0x007F, 0);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_bf16(f), h);
  }
}

// ---------------------------------------------------------------- dequantize known blocks

TEST(DequantizeTest, Q4_0) {
  BlockQ4_0 b;
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row(DType::Q4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
  }
}

TEST(DequantizeTest, Q8_0AtOddAddress) {
  uint8_t raw[1 + 2 * sizeof(BlockQ8_0)];
  for (int blk = 0; blk < 2; ++blk) {
    BlockQ8_0 b;
    b.d = fp32_to_fp16(blk ? -0.25f : 2.0f);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j * 8 - 128);
    std::memcpy(raw + 1 + blk * sizeof(b), &b, sizeof(b));
  }
  float y[64];
  dequantize_row(DType::Q8_0, raw + 1, y, 64);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(y[j], (j * 8 - 128) * 2.0f);
    EXPECT_EQ(y[32 + j], (j * 8 - 128) * -0.25f);
  }
}

// Packs 8 6-bit (scale, min) pairs as ggml's get_scale_min_k4 reads them.
void pack_q4k_scales(const int* sc, const int* mn, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] |= sc[j] & 63;
      s[j + 4] |= mn[j] & 63;
    } else {
      s[j + 4] |= (sc[j] & 0xF) | ((mn[j] & 0xF) << 4);
      s[j - 4] |= (sc[j] >> 4) << 6;
      s[j] |= (mn[j] >> 4) << 6;
    }
  }
}

TEST(DequantizeTest, Q4_K) {
  BlockQ4_K b;
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  const int sc[8] = {1, 63, 17, 32, 5, 48, 33, 62};
  const int mn[8] = {0, 1, 63, 20, 47, 16, 31, 2};
  pack_q4k_scales(sc, mn, b.scales);
  // Element e of sub-block j: quant (e * 7 + j) % 16.
  auto quant = [](int j, int e) { return (e * 7 + j) % 16; };
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) b.qs[32 * c + l] = static_cast<uint8_t>(quant(2 * c, l) | (quant(2 * c + 1, l) << 4));
  }
  float y[256];
  dequantize_row(DType::Q4_K, &b, y, 256);
  for (int j = 0; j < 8; ++j) {
    for (int e = 0; e < 32; ++e) {
      EXPECT_EQ(y[32 * j + e], 0.5f * sc[j] * quant(j, e) - 0.25f * mn[j]) << j << " " << e;
    }
  }
}

TEST(DequantizeTest, Q6_K) {
  BlockQ6_K b;
  std::memset(&b, 0, sizeof(b));
  b.d = fp32_to_fp16(0.125f);
  for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<int8_t>(g * 17 - 128);
  // Element e has the 6-bit quant (e * 5) % 64, packed as described at BlockQ6_K.
  auto quant = [](int e) { return (e * 5) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const int q = quant(e);
    b.ql[64 * h + l + 32 * (k & 1)] |= static_cast<uint8_t>((q & 0xF) << (4 * (k >> 1)));
    b.qh[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
  }
  float y[256];
  dequantize_row(DType::Q6_K, &b, y, 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], 0.125f * b.scales[e / 16] * (quant(e) - 32)) << e;
}

// Element j of the hand-made 32-element blocks below has the 4-bit quant (j * 5) % 16 and,
// for the 5-bit types, the high bit j % 3 == 0.
int nibble(int j) { return (j * 5) % 16; }
int quant5(int j) { return nibble(j) | (j % 3 == 0 ? 16 : 0); }

template <typename Block>
void pack_nibbles(Block& b) {
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(nibble(j) | (nibble(j + 16) << 4));
}

template <typename Block>
void pack_high_bits(Block& b) {
  uint32_t high = 0;
  for (int j = 0; j < 32; ++j) high |= static_cast<uint32_t>(j % 3 == 0) << j;
  std::memcpy(b.qh, &high, 4);
}

TEST(DequantizeTest, Q4_1) {
  BlockQ4_1 b;
  b.d = fp32_to_fp16(0.5f);
  b.m = fp32_to_fp16(-3.25f);
  pack_nibbles(b);
  float y[32];
  dequantize_row(DType::Q4_1, &b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * nibble(j) - 3.25f) << j;
}

TEST(DequantizeTest, Q5_0) {
  BlockQ5_0 b;
  b.d = fp32_to_fp16(0.25f);
  pack_nibbles(b);
  pack_high_bits(b);
  float y[32];
  dequantize_row(DType::Q5_0, &b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.25f * (quant5(j) - 16)) << j;
}

TEST(DequantizeTest, Q5_1) {
  BlockQ5_1 b;
  b.d = fp32_to_fp16(0.125f);
  b.m = fp32_to_fp16(1.5f);
  pack_nibbles(b);
  pack_high_bits(b);
  float y[32];
  dequantize_row(DType::Q5_1, &b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.125f * quant5(j) + 1.5f) << j;
}

TEST(DequantizeTest, IQ4_NL) {
  BlockIQ4_NL b;
  b.d = fp32_to_fp16(0.0625f);
  pack_nibbles(b);
  float y[32];
  dequantize_row(DType::IQ4_NL, &b, y, 32);
  const int levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.0625f * levels[nibble(j)]) << j;
}

TEST(DequantizeTest, FloatTypes) {
  const float x[4] = {1.5f, -0.0f, 65504.0f, 3.140625f};
  uint16_t h[4], bf[4];
  quantize_row(DType::F16, x, h, 4);
  quantize_row(DType::BF16, x, bf, 4);
  float y[4];
  dequantize_row(DType::F16, h, y, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], x[i]);
  dequantize_row(DType::BF16, bf, y, 4);
  EXPECT_EQ(y[0], 1.5f);
  EXPECT_EQ(y[3], 3.140625f);
  dequantize_row(DType::F32, x, y, 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], x[i]);
}

// ---------------------------------------------------------------- quantizers

TEST(QuantizeTest, Q8_0KnownBlock) {
  // max |x| = 127: the scale is exactly 1 and the quants are x rounded half away from zero.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = j == 5 ? -127.0f : static_cast<float>(j) - 15.5f;
  BlockQ8_0 b;
  quantize_row(DType::Q8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b.qs[j], static_cast<int8_t>(std::round(x[j]))) << j;
}

TEST(QuantizeTest, Q4_0KnownBlock) {
  // The value of largest magnitude (-16) maps to quant 0, so d = 2 and q = x / 2 + 8 rounded
  // half up (ggml adds 8.5 and truncates).
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j) - 16.0f;
  BlockQ4_0 b;
  quantize_row(DType::Q4_0, x, &b, 32);
  EXPECT_EQ(fp16_to_fp32(b.d), 2.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(b.qs[j] & 0xF, std::min(15, static_cast<int>(x[j] / 2 + 8.5f))) << j;
    EXPECT_EQ(b.qs[j] >> 4, std::min(15, static_cast<int>(x[j + 16] / 2 + 8.5f))) << j;
  }
}

TEST(QuantizeTest, ZeroRowsQuantizeToZero) {
  std::vector<float> x(256, 0.0f), y(256, 1.0f);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q4_K,
                 DType::Q6_K, DType::Q8_K, DType::Q5_K, DType::Q3_K, DType::Q2_K, DType::IQ4_XS}) {
    std::vector<uint8_t> q(row_bytes(t, 256));
    quantize_row(t, x.data(), q.data(), 256);
    dequantize_row(t, q.data(), y.data(), 256);
    for (float v : y) ASSERT_EQ(v, 0.0f) << dtype_name(t);
  }
}

// Root-mean-square round-trip error relative to the RMS of Gaussian data, and the largest
// error relative to the largest magnitude of the row.
struct ErrorBound {
  DType type;
  double rms;
  double max;
};

TEST(QuantizeTest, RoundTripErrorIsBounded) {
  // Q4_0's worst case is a whole step (d = max / 8) where the largest positive value
  // clamps to quant 15.
  const ErrorBound bounds[] = {
      {DType::F16, 5e-4, 5e-4},   {DType::BF16, 3e-3, 4e-3},    {DType::Q8_0, 7e-3, 5e-3},
      {DType::Q8_K, 9e-3, 5e-3},  {DType::Q6_K, 2.2e-2, 2e-2},  {DType::Q4_K, 8.5e-2, 7e-2},
      {DType::Q4_0, 1.0e-1, 0.13},
      {DType::Q4_1, 8.5e-2, 7e-2},  {DType::Q5_0, 4.7e-2, 5e-2},  {DType::Q5_1, 4.2e-2, 3.5e-2},
      {DType::IQ4_NL, 8.2e-2, 7e-2}, {DType::Q5_K, 4.5e-2, 4e-2},  {DType::Q3_K, 0.2, 0.2},
      {DType::Q2_K, 0.4, 0.4},      {DType::IQ4_XS, 0.1, 0.1},
  };
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n = 4096;
  std::vector<float> x(n), y(n);
  for (const ErrorBound& b : bounds) {
    for (int trial = 0; trial < 4; ++trial) {
      const float scale = std::ldexp(1.0f, trial * 3 - 6);
      for (float& v : x) v = dist(rng) * scale;
      std::vector<uint8_t> q(row_bytes(b.type, n));
      quantize_row(b.type, x.data(), q.data(), n);
      dequantize_row(b.type, q.data(), y.data(), n);
      double se = 0, sx = 0, max_err = 0, max_x = 0;
      for (int64_t i = 0; i < n; ++i) {
        se += (y[i] - x[i]) * static_cast<double>(y[i] - x[i]);
        sx += x[i] * static_cast<double>(x[i]);
        max_err = std::max(max_err, std::fabs(static_cast<double>(y[i]) - x[i]));
        max_x = std::max(max_x, std::fabs(static_cast<double>(x[i])));
      }
      EXPECT_LT(std::sqrt(se / sx), b.rms) << dtype_name(b.type);
      EXPECT_LT(max_err / max_x, b.max) << dtype_name(b.type);
    }
  }
}

// Quantizing a dequantized row again reproduces it: the stored scales already fit it.
TEST(QuantizeTest, Q8_0AndQ4_0AreIdempotent) {
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(1024), y(1024), z(1024);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    for (float& v : x) v = dist(rng);
    std::vector<uint8_t> q(row_bytes(t, 1024)), q2(row_bytes(t, 1024));
    quantize_row(t, x.data(), q.data(), 1024);
    dequantize_row(t, q.data(), y.data(), 1024);
    quantize_row(t, y.data(), q2.data(), 1024);
    dequantize_row(t, q2.data(), z.data(), 1024);
    EXPECT_EQ(y, z) << dtype_name(t);
  }
}

// Q8_K: d = max / -127 of the value of largest magnitude, quants rounded half to even,
// bsums the sums of 16 quants.
TEST(QuantizeTest, Q8_KLayout) {
  std::vector<float> x(256);
  for (int j = 0; j < 256; ++j) x[j] = static_cast<float>(j % 7) - 3.5f;
  x[100] = 127.0f;
  BlockQ8_K b;
  quantize_row(DType::Q8_K, x.data(), &b, 256);
  EXPECT_EQ(b.d, -1.0f);
  for (int j = 0; j < 256; ++j) {
    const float v = -x[j];
    EXPECT_EQ(b.qs[j], static_cast<int8_t>(std::nearbyint(v))) << j;  // default mode: ties to even
  }
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
    EXPECT_EQ(b.bsums[g], sum);
  }
}

}  // namespace
}  // namespace ll::kernels
