#pragma once
// GGUF quantization blocks, bit-compatible with ggml (ggml-common.h). Tensors in a GGUF file
// are arrays of these blocks, only 32-byte aligned as a whole, so code must not assume
// any alignment of an individual block beyond 1 byte (their sizes are 18, 34, 84, 110, 136, 144, 176, 210).
// Half-precision fields are raw IEEE binary16 bits.
#include <cstdint>

namespace ll {

constexpr int kQK4_0 = 32;
constexpr int kQK8_0 = 32;
constexpr int kQK_K = 256;  // elements per K-quant super-block

// 32 elements: x[j] = (q_j - 8) * d, q_j in the low nibble of qs[j] for j < 16 and in
// the high nibble of qs[j - 16] for j >= 16.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};

// 32 elements: x[j] = qs[j] * d.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};

// 32 elements: x[j] = q_j * d + m, q_j packed as in BlockQ4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};

// 32 elements: x[j] = (q_j - 16) * d, q_j a 5-bit value whose low 4 bits are packed as in
// BlockQ4_0 and whose high bit is bit j of the little-endian 32-bit qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};

// 32 elements: x[j] = q_j * d + m, q_j packed as in BlockQ5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
};

// 32 elements: x[j] = kIQ4NLValues[q_j] * d, q_j packed as in BlockQ4_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[16];
};

// The 16 levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl), denser near zero like the weights.
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Activations for Q4_1 / Q5_1 dot products: x = qs * d, s = d * sum(qs) (fp16, rounded from the
// unrounded d), which multiplies the weights' m.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};

static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockQ8_1) == 36);

// 256 elements in 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min:
// x = d * scale_j * q - dmin * min_j. `scales` packs the 8 (scale, min) pairs as ggml's
// get_scale_min_k4: j < 4 in the low 6 bits of scales[j] / scales[j + 4]; j >= 4 in the
// nibbles of scales[j + 4] with the top 2 bits in the high bits of scales[j - 4] / scales[j].
// qs: for each 64-element chunk c, 32 bytes whose low nibbles are sub-block 2c and high
// nibbles sub-block 2c + 1.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};

// 256 elements in 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q a 6-bit value whose
// low 4 bits are in ql and high 2 bits in qh. Per 128-element half h (ql += 64h, qh += 32h),
// element l + 32k (l < 32, k < 4) has low bits in ql[l + 32 * (k & 1)] (low nibble for
// k < 2, high for k >= 2) and high bits at qh[l] >> 2k.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// 256 elements in 8 sub-blocks of 32: x = d * scale_j * q - dmin * min_j as Q4_K (same
// `scales` packing), with 5-bit q: low 4 bits in qs as Q4_K, bit 4 of element e at
// qh[e % 32] >> (e / 32).
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// 256 elements in 16 sub-blocks of 16: x = d * (scale_j - 32) * (q - 4), q a 3-bit value.
// Element e = 128h + 32k + l (l < 32) has its low 2 bits at qs[32h + l] >> 2k and its high
// bit at hmask[l] >> (4h + k). The 6-bit scale of sub-block j has its low 4 bits in the
// nibble j / 8 of scales[j % 8] and its high 2 bits at scales[8 + j % 4] >> 2 * (j / 4).
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 256 elements in 16 sub-blocks of 16: x = d * (scales[j] & 15) * q - dmin * (scales[j] >> 4),
// q a 2-bit value; element e = 128h + 32k + l (l < 32) at qs[32h + l] >> 2k.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// 256 elements in 8 sub-blocks of 32: x = d * (scale_j - 32) * kIQ4NLValues[q], q a 4-bit
// index. The 6-bit scale of sub-block j has its low 4 bits in the nibble j % 2 of
// scales_l[j / 2] and its high 2 bits at scales_h >> 2j. Sub-block j's element l < 16 is the
// low nibble of qs[16j + l], element l + 16 its high nibble.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};

// Activations for K-quant dot products: x = qs * d, bsums[j] = sum of qs[16j .. 16j + 15].
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace ll
