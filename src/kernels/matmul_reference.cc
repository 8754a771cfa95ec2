// Scalar twins of the matmul kernels: the arithmetic of ggml's generic (non-SIMD) dot
// products, one weight row and one token at a time. The SIMD kernels must agree with these
// up to the order of float additions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/quant_blocks.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/quantize.h"

namespace ll::kernels {
namespace detail {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// ggml's quantize_row_q8_0_ref, one token row, into the structure-of-arrays layout.
void quantize_q8_0_row(const float* x, int64_t nb, int8_t* qs, float* d) {
  for (int64_t b = 0; b < nb; ++b, x += 32, qs += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float scale = amax / 127;
    const float id = scale ? 1.0f / scale : 0.0f;
    d[b] = fp16_to_fp32(fp32_to_fp16(scale));
    for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

// ggml's quantize_row_q8_K_ref, one token row (the block quantizer of quantize.cc).
void quantize_q8_k_row(const float* x, int64_t nb, int8_t* qs, float* d, int16_t* bsums) {
  for (int64_t b = 0; b < nb; ++b, x += kQK_K, qs += kQK_K, bsums += kQK_K / 16) {
    quantize_block_q8_k(x, qs, d + b, bsums);
  }
}

float dot_q4_0(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * 32;
  const float* xd = a.d + t * a.blocks;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ4_0), xq += 32) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((w[2 + j] & 0xF) - 8) * xq[j];
      isum += ((w[2 + j] >> 4) - 8) * xq[j + 16];
    }
    acc += (fp16_to_fp32(load_u16(w)) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

float dot_q8_0(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * 32;
  const float* xd = a.d + t * a.blocks;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ8_0), xq += 32) {
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += static_cast<int8_t>(w[2 + j]) * xq[j];
    acc += (fp16_to_fp32(load_u16(w)) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

// The integer levels of one block of a 32-element type with their offset applied, so that
// x[j] = q[j] * d (+ m for the types with a minimum). Returns the block's size in bytes.
int64_t decode_q32(DType t, const uint8_t* w, int q[32], float* d, float* m) {
  *d = fp16_to_fp32(load_u16(w));
  switch (t) {
    case DType::Q4_1:
      *m = fp16_to_fp32(load_u16(w + 2));
      for (int j = 0; j < 16; ++j) {
        q[j] = w[4 + j] & 0xF;
        q[j + 16] = w[4 + j] >> 4;
      }
      return sizeof(BlockQ4_1);
    case DType::IQ4_NL:
      for (int j = 0; j < 16; ++j) {
        q[j] = kIQ4NLValues[w[2 + j] & 0xF];
        q[j + 16] = kIQ4NLValues[w[2 + j] >> 4];
      }
      return sizeof(BlockIQ4_NL);
    default: {
      const bool has_min = t == DType::Q5_1;
      if (has_min) *m = fp16_to_fp32(load_u16(w + 2));
      const uint8_t* qh = w + (has_min ? 4 : 2);
      const uint8_t* qs = qh + 4;
      uint32_t high;
      std::memcpy(&high, qh, 4);
      for (int j = 0; j < 32; ++j) {
        const int low = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
        q[j] = (low | static_cast<int>(((high >> j) & 1) << 4)) - (has_min ? 0 : 16);
      }
      return has_min ? sizeof(BlockQ5_1) : sizeof(BlockQ5_0);
    }
  }
}

// Q4_1, Q5_0, Q5_1 and IQ4_NL: ggml's vec_dot_*_q8_0 / *_q8_1, including the min term m * s.
float dot_q32(DType type, const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * 32;
  const float* xd = a.d + t * a.blocks;
  const bool has_min = act_has_block_sums(type);
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, xq += 32) {
    int q[32];
    float d, m = 0;
    w += decode_q32(type, w, q, &d, &m);
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += q[j] * xq[j];
    if (has_min) {
      acc += (d * xd[b]) * static_cast<float>(isum) + m * a.s[t * a.blocks + b];
    } else {
      acc += (d * xd[b]) * static_cast<float>(isum);
    }
  }
  return acc;
}

float dot_q4_k(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  const int16_t* bsums = a.bsums + t * a.blocks * 16;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ4_K), xq += kQK_K, bsums += 16) {
    BlockQ4_K blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    int32_t imin = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* s = blk.scales;
      const int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
      const int m = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) dot += ((q[l] >> shift) & 0xF) * xq[32 * j + l];
      isum += sc * dot;
      imin += m * (bsums[2 * j] + bsums[2 * j + 1]);
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum) -
           (fp16_to_fp32(blk.dmin) * xd[b]) * static_cast<float>(imin);
  }
  return acc;
}

float dot_q6_k(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ6_K), xq += kQK_K) {
    BlockQ6_K blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t lo = blk.ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1)) & 0xF;
      const uint8_t hi = (blk.qh[32 * h + l] >> (2 * k)) & 3;
      isum += blk.scales[e / 16] * ((lo | (hi << 4)) - 32) * xq[e];
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

// Each K-quant below is the integer dot of its quants with the Q8_K quants, per sub-block,
// times the sub-block scale; the d * d_x scaling (and the min terms through bsums) once
// per block.

float dot_q5_k(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  const int16_t* bsums = a.bsums + t * a.blocks * 16;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ5_K), xq += kQK_K, bsums += 16) {
    BlockQ5_K blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    int32_t imin = 0;
    for (int j = 0; j < 8; ++j) {
      const uint8_t* s = blk.scales;
      const int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
      const int m = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      int32_t dot = 0;
      for (int l = 0; l < 32; ++l) {
        dot += (((q[l] >> shift) & 0xF) | (((blk.qh[l] >> j) & 1) << 4)) * xq[32 * j + l];
      }
      isum += sc * dot;
      imin += m * (bsums[2 * j] + bsums[2 * j + 1]);
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum) -
           (fp16_to_fp32(blk.dmin) * xd[b]) * static_cast<float>(imin);
  }
  return acc;
}

float dot_q3_k(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ3_K), xq += kQK_K) {
    BlockQ3_K blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t* s = blk.scales;
      const int sc = (((s[j % 8] >> (4 * (j / 8))) & 0xF) | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
      int32_t dot = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        const int q = ((blk.qs[32 * h + l] >> (2 * k)) & 3) - ((blk.hmask[l] >> (4 * h + k)) & 1 ? 0 : 4);
        dot += q * xq[e];
      }
      isum += sc * dot;
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

float dot_q2_k(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  const int16_t* bsums = a.bsums + t * a.blocks * 16;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockQ2_K), xq += kQK_K, bsums += 16) {
    BlockQ2_K blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    int32_t imin = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t dot = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        dot += ((blk.qs[32 * h + l] >> (2 * k)) & 3) * xq[e];
      }
      isum += (blk.scales[j] & 0xF) * dot;
      imin += (blk.scales[j] >> 4) * bsums[j];
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum) -
           (fp16_to_fp32(blk.dmin) * xd[b]) * static_cast<float>(imin);
  }
  return acc;
}

float dot_iq4_xs(const uint8_t* w, const QuantizedActs& a, int64_t t) {
  const int8_t* xq = a.qs + t * a.blocks * kQK_K;
  const float* xd = a.d + t * a.blocks;
  float acc = 0;
  for (int64_t b = 0; b < a.blocks; ++b, w += sizeof(BlockIQ4_XS), xq += kQK_K) {
    BlockIQ4_XS blk;
    std::memcpy(&blk, w, sizeof(blk));
    int32_t isum = 0;
    for (int j = 0; j < 8; ++j) {
      const int sc = (((blk.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((blk.scales_h >> (2 * j)) & 3) << 4)) - 32;
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) {
        dot += kIQ4NLValues[blk.qs[16 * j + l] & 0xF] * xq[32 * j + l];
        dot += kIQ4NLValues[blk.qs[16 * j + l] >> 4] * xq[32 * j + l + 16];
      }
      isum += sc * dot;
    }
    acc += (fp16_to_fp32(blk.d) * xd[b]) * static_cast<float>(isum);
  }
  return acc;
}

float dot_float(DType t, const uint8_t* w, const float* x, int64_t cols) {
  float acc = 0;
  for (int64_t k = 0; k < cols; ++k) {
    float wk;
    if (t == DType::F32) {
      std::memcpy(&wk, w + 4 * k, 4);
    } else {
      const uint16_t h = load_u16(w + 2 * k);
      wk = t == DType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
    }
    acc += wk * x[k];
  }
  return acc;
}

}  // namespace

void q8_1_block_sums(const float* x, const int8_t* qs, int64_t nb, float* s) {
  for (int64_t b = 0; b < nb; ++b, x += 32, qs += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += qs[j];
    s[b] = fp16_to_fp32(fp32_to_fp16(static_cast<float>(sum) * (amax / 127)));
  }
}

void quantize_acts_reference(const MatmulJob& job, int64_t t0, int64_t t1) {
  const QuantizedActs& a = job.acts;
  const int be = act_block_elems(job.type);
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = job.x + t * job.cols;
    if (be == 32) {
      quantize_q8_0_row(x, a.blocks, a.qs + t * a.blocks * 32, a.d + t * a.blocks);
      if (a.s) q8_1_block_sums(x, a.qs + t * a.blocks * 32, a.blocks, a.s + t * a.blocks);
    } else if (be == kQK_K) {
      quantize_q8_k_row(x, a.blocks, a.qs + t * a.blocks * kQK_K, a.d + t * a.blocks,
                        a.bsums + t * a.blocks * 16);
    }
  }
}

void matmul_rows_reference(const MatmulJob& job, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = job.w + r * job.row_bytes;
    for (int64_t t = 0; t < job.n; ++t) {
      float v;
      switch (job.type) {
        case DType::Q4_0: v = dot_q4_0(w, job.acts, t); break;
        case DType::Q8_0: v = dot_q8_0(w, job.acts, t); break;
        case DType::Q4_1: v = dot_q32(job.type, w, job.acts, t); break;
        case DType::Q5_0: v = dot_q32(job.type, w, job.acts, t); break;
        case DType::Q5_1: v = dot_q32(job.type, w, job.acts, t); break;
        case DType::IQ4_NL: v = dot_q32(job.type, w, job.acts, t); break;
        case DType::Q4_K: v = dot_q4_k(w, job.acts, t); break;
        case DType::Q6_K: v = dot_q6_k(w, job.acts, t); break;
        case DType::Q5_K: v = dot_q5_k(w, job.acts, t); break;
        case DType::Q3_K: v = dot_q3_k(w, job.acts, t); break;
        case DType::Q2_K: v = dot_q2_k(w, job.acts, t); break;
        case DType::IQ4_XS: v = dot_iq4_xs(w, job.acts, t); break;
        default: v = dot_float(job.type, w, job.x + t * job.cols, job.cols); break;
      }
      job.y[t * job.rows + r] = v;
    }
  }
}

}  // namespace detail

void matmul_reference(DType t, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n,
                      float* Y) {
  detail::MatmulJob job{t, static_cast<const uint8_t*>(W), rows, cols, row_bytes(t, cols), X, n, Y, {}};
  std::vector<uint8_t> scratch(detail::acts_bytes(t, cols, n) + 64);
  void* aligned = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  job.acts = detail::acts_layout(t, cols, n, aligned);
  detail::quantize_acts_reference(job, 0, n);
  detail::matmul_rows_reference(job, 0, rows);
}

}  // namespace ll::kernels
