#include "kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/quant_blocks.h"

// Quantizers follow ggml's reference (quantize_row_*_ref) operation by operation, including
// the order of float operations, so that the bytes written equal ggml's. Blocks are copied
// through memcpy because tensors are only byte-aligned at block granularity.
namespace ll::kernels {
namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round half to even for |v| < 2^22 (ggml's nearest_int): adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits.
int nearest_int(float v) {
  const uint32_t u = float_bits(v + 12582912.f);
  return static_cast<int>(u & 0x007fffff) - 0x00400000;
}

template <typename Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + i * sizeof(Block), sizeof(Block));
  return b;
}

template <typename Block>
void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + i * sizeof(Block), &b, sizeof(Block));
}

// Scale and min of sub-block j of a Q4_K block (6 bits each).
void q4k_scale_min(int j, const uint8_t* s, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// ggml's make_qx_quants with rmse_type 1 and no importance weights: symmetric quantization
// to [-nmax, nmax - 1] (stored with +nmax offset in L), searching 19 candidate scales around
// -nmax / max for the least weighted (w = x^2) squared error. Returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  auto fit = [&](float iscale, float* sumlx, float* suml2) {
    *sumlx = 0;
    *suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      *sumlx += w * x[i] * l;
      *suml2 += w * l * l;
    }
  };
  auto assign = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      L[i] = static_cast<int8_t>(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
  };
  float iscale = -nmax / max;
  float sumlx, suml2;
  fit(iscale, &sumlx, &suml2);
  assign(iscale);
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    fit(iscale, &sumlx, &suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      assign(iscale);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// ggml's make_qkx2_quants: asymmetric quantization x ~ scale * L + min to [0, nmax] with
// min <= 0, searching nstep + 1 candidate scales and refitting (scale, min) by weighted least
// squares for each; candidates are judged by weighted squared error, or with use_mad by
// weighted absolute error. Returns the scale; *neg_min receives -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* neg_min, float rmin, float rdelta, int nstep, bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(L, L + n, 0);
    *neg_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    const float diff = scale * L[i] + min - x[i];
    best_error += weights[i] * (use_mad ? std::fabs(diff) : diff * diff);
  }
  uint8_t Laux[kQK_K];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        cur_error += weights[i] * (use_mad ? std::fabs(diff) : diff * diff);
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// ggml's make_q3_quants with do_rmse: symmetric quantization to [-nmax, nmax - 1] (stored
// with +nmax offset in L) from -nmax / max, then up to 5 passes that move single values to
// the level that lowers the weighted (w = x^2) squared error. Returns the scale.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  const float iscale = -nmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * L[i];
      if (slx <= 0) continue;
      float sl2 = suml2 - w * L[i] * L[i];
      const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
      if (new_l == L[i]) continue;
      slx += w * x[i] * new_l;
      sl2 += w * new_l * new_l;
      if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
        L[i] = static_cast<int8_t>(new_l);
        sumlx = slx;
        suml2 = sl2;
        ++changed;
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

// The 6-bit scale of sub-block j of a Q3_K block, still offset by 32.
int q3k_scale(int j, const uint8_t* s) {
  return ((s[j % 8] >> (4 * (j / 8))) & 0xF) | (((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
}

// The 6-bit scale of sub-block j of an IQ4_XS block, still offset by 32.
int iq4xs_scale(int j, const BlockIQ4_XS& b) {
  return ((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4);
}

// Packs 2-bit values L[0..255] as Q2_K / Q3_K store them: element 128h + 32k + l at
// qs[32h + l] >> 2k.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* Lh = L + 128 * h;
      qs[32 * h + l] = static_cast<uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
    }
  }
}

// ---------------------------------------------------------------- quantizers

void quantize_q8_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK8_0) {
    float amax = 0;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    store_block(dst, i, b);
  }
}

void quantize_q4_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK4_0) {
    // The signed value of largest magnitude maps to -8, so the full range [-8, 7] is used.
    float amax = 0;
    float max = 0;
    for (int j = 0; j < kQK4_0; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      // Truncation after +8.5 rounds half up; as in ggml.
      const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>(x[j] * id + 8.5f));
      const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>(x[j + 16] * id + 8.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

// The block's smallest value maps to 0 and its largest to nmax (15 or 31): x = q * d + min.
// Returns d; *min receives the minimum.
float min_max_scale(const float* x, int nmax, float* min) {
  float lo = std::numeric_limits<float>::max();
  float hi = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  *min = lo;
  return (hi - lo) / nmax;
}

void quantize_q4_1(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float min;
    const float d = min_max_scale(x, 15, &min);
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
      // Truncation after +0.5 rounds half up; as in ggml.
      const uint8_t q0 = std::min<int8_t>(15, static_cast<int8_t>((x[j] - min) * id + 0.5f));
      const uint8_t q1 = std::min<int8_t>(15, static_cast<int8_t>((x[j + 16] - min) * id + 0.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, i, b);
  }
}

// Packs 32 5-bit values: low nibbles into qs as Q4_0 does, bit 4 of value j into bit j of qh.
void pack_5bit(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
    high |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    high |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
  }
  std::memcpy(qh, &high, 4);
}

void quantize_q5_0(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    // As Q4_0: the signed value of largest magnitude maps to -16.
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = std::min<int8_t>(31, static_cast<int8_t>(x[j] * id + 16.5f));
    BlockQ5_0 b;
    b.d = fp32_to_fp16(d);
    pack_5bit(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

void quantize_q5_1(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float min;
    const float d = min_max_scale(x, 31, &min);
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
    BlockQ5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    pack_5bit(q, b.qs, b.qh);
    store_block(dst, i, b);
  }
}

// Index of the IQ4_NL level nearest to v, as ggml's best_index_int8: between the levels lo and
// hi = lo + 1 around v, ties go to hi. lo is found by counting instead of ggml's binary search
// (the same bracket, without its unpredictable branches: the quantizer calls this 500 times
// per block).
int nearest_iq4nl_level(float v) {
  if (v <= kIQ4NLValues[0]) return 0;
  if (v >= kIQ4NLValues[15]) return 15;
  int lo = 0;
  for (int k = 1; k < 15; ++k) lo += v >= kIQ4NLValues[k];
  return v - kIQ4NLValues[lo] < kIQ4NLValues[lo + 1] - v ? lo : lo + 1;
}

// As ggml_quantize_chunk quantizes IQ4_NL without an importance matrix (quantize_row_iq4_nl_impl
// with weights x^2 and 7 tries each side): the scale of the best weighted least-squares fit
// among 1 + 15 candidate scales, the levels then re-picked for the chosen scale.
void quantize_iq4_nl(const float* x, void* dst, int64_t nb) {
  constexpr int kTries = 7;
  for (int64_t i = 0; i < nb; ++i, x += 32) {
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    // Weighted sums of q * x and q^2 over the block for the levels nearest to x * iscale.
    auto fit = [&](float iscale, float* sumqx, float* sumq2) {
      *sumqx = 0;
      *sumq2 = 0;
      for (int j = 0; j < 32; ++j) {
        const float q = kIQ4NLValues[nearest_iq4nl_level(iscale * x[j])];
        const float w = x[j] * x[j];
        *sumqx += w * q * x[j];
        *sumq2 += w * q * q;
      }
    };
    float d = 0;
    if (amax >= 1e-15f) {
      float sumqx, sumq2;
      fit(1 / (-max / kIQ4NLValues[0]), &sumqx, &sumq2);
      d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
      float best = d * sumqx;
      for (int t = -kTries; t <= kTries; ++t) {
        fit((t + kIQ4NLValues[0]) / max, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
    }
    BlockIQ4_NL b;
    b.d = fp32_to_fp16(d);
    const float id = d ? 1 / d : 0;
    for (int j = 0; j < 16; ++j) {
      b.qs[j] = static_cast<uint8_t>(nearest_iq4nl_level(id * x[j]) | (nearest_iq4nl_level(id * x[j + 16]) << 4));
    }
    store_block(dst, i, b);
  }
}

// The sub-block scales and mins of Q4_K and Q5_K (levels 0..nmax) as quantize_row_q4_K_ref /
// q5_K_ref make them: each sub-block of 32 fitted by make_qkx2_quants, the 8 scales and mins
// stored as 6-bit values under the fp16 super-block scales d and dmin (scales[12] packed as
// BlockQ4_K documents), then L requantized against the scales actually stored.
void fit_k_scales_mins(const float* x, int nmax, float rmin, int nstep, uint8_t L[kQK_K], uint8_t scales[12],
                       uint16_t* d, uint16_t* dmin) {
  float weights[32];
  float mins[kQK_K / 32];
  float sub_scales[kQK_K / 32];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    sub_scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
    max_scale = std::max(max_scale, sub_scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  std::memset(scales, 0, 12);
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * sub_scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d = fp32_to_fp16(max_scale / 63.f);
  *dmin = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    q4k_scale_min(j, scales, &sc, &m);
    const float dj = fp16_to_fp32(*d) * sc;
    if (!dj) continue;
    const float dm = fp16_to_fp32(*dmin) * m;
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + dm) / dj), 0, nmax));
    }
  }
}

void quantize_q4_k(const float* x, void* dst, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    BlockQ4_K b;
    fit_k_scales_mins(x, 15, -1.f, 20, L, b.scales, &b.d, &b.dmin);
    for (int c = 0; c < kQK_K / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
      }
    }
    store_block(dst, i, b);
  }
}

void quantize_q5_k(const float* x, void* dst, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    BlockQ5_K b;
    std::memset(&b, 0, sizeof(b));
    fit_k_scales_mins(x, 31, -0.5f, 15, L, b.scales, &b.d, &b.dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int c = e / 64, l = e % 32;
      b.qs[32 * c + l] |= static_cast<uint8_t>((L[e] & 0xF) << (e % 64 >= 32 ? 4 : 0));
      b.qh[l] |= static_cast<uint8_t>((L[e] >> 4) << (e / 32));
    }
    store_block(dst, i, b);
  }
}

void quantize_q3_k(const float* x, void* dst, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > amax) {
        amax = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ3_K b;
    std::memset(&b, 0, sizeof(b));
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
        b.scales[j % 8] |= static_cast<uint8_t>((l & 0xF) << (4 * (j / 8)));
        b.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      b.d = fp32_to_fp16(1 / iscale);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_fp32(b.d) * (q3k_scale(j, b.scales) - 32);
      if (!d) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -4, 3) + 4);
      }
    }
    uint8_t low[kQK_K];
    for (int e = 0; e < kQK_K; ++e) {
      // The high bit of element e goes to hmask[e % 32], bit e / 32.
      if (L[e] > 3) b.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
      low[e] = static_cast<uint8_t>(L[e] & 3);
    }
    pack_2bit(low, b.qs);
    store_block(dst, i, b);
  }
}

void quantize_q2_k(const float* x, void* dst, int64_t nb) {
  uint8_t L[kQK_K];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    BlockQ2_K b;
    std::memset(&b, 0, sizeof(b));
    if (max_scale > 0) {
      const float iscale = 15.f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      b.d = fp32_to_fp16(max_scale / 15.f);
    }
    if (max_min > 0) {
      const float iscale = 15.f / max_min;
      for (int j = 0; j < kQK_K / 16; ++j) b.scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
      b.dmin = fp32_to_fp16(max_min / 15.f);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_fp32(b.d) * (b.scales[j] & 0xF);
      if (!d) continue;
      const float dm = fp16_to_fp32(b.dmin) * (b.scales[j] >> 4);
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + l] + dm) / d), 0, 3));
      }
    }
    pack_2bit(L, b.qs);
    store_block(dst, i, b);
  }
}

// ggml's quantize_iq4_xs without an importance matrix (quantize_row_iq4_nl_impl with weights
// x^2 and 7 trial scales on either side): per sub-block of 32 the scale of least weighted
// error, then 6-bit sub-block scales relative to the largest and the levels requantized.
void quantize_iq4_xs(const float* x, void* dst, int64_t nb) {
  constexpr int kTries = 7;
  const int8_t* values = kIQ4NLValues;
  uint8_t L[kQK_K];
  float scales[kQK_K / 32];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float amax_scale = 0;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const float* xb = x + 32 * ib;
      float amax = 0;
      float max = 0;
      for (int j = 0; j < 32; ++j) {
        if (std::fabs(xb[j]) > amax) {
          amax = std::fabs(xb[j]);
          max = xb[j];
        }
      }
      if (amax < 1e-15f) {
        scales[ib] = 0;
        continue;
      }
      // Weighted least-squares scale of the levels chosen with inverse scale id.
      auto fit = [&](float id, float* sumqx, float* sumq2) {
        *sumqx = 0;
        *sumq2 = 0;
        for (int j = 0; j < 32; ++j) {
          const float q = values[nearest_iq4nl_level(id * xb[j])];
          const float w = xb[j] * xb[j];
          *sumqx += w * q * xb[j];
          *sumq2 += w * q * q;
        }
      };
      float sumqx, sumq2;
      fit(1 / (-max / values[0]), &sumqx, &sumq2);
      float d = sumqx / sumq2;
      float best = d * sumqx;
      for (int t = -kTries; t <= kTries; ++t) {
        fit((t + values[0]) / max, &sumqx, &sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
          d = sumqx / sumq2;
          best = d * sumqx;
        }
      }
      scales[ib] = d;
      if (std::fabs(d) > amax_scale) {
        amax_scale = std::fabs(d);
        max_scale = d;
      }
    }
    BlockIQ4_XS b;
    std::memset(&b, 0, sizeof(b));
    const float d = -max_scale / 32;
    b.d = fp32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      const int l = std::clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * l;
      const float idl = dl ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(nearest_iq4nl_level(idl * x[32 * ib + j]));
      b.scales_l[ib / 2] |= static_cast<uint8_t>(((l + 32) & 0xF) << (4 * (ib % 2)));
      b.scales_h |= static_cast<uint16_t>(((l + 32) >> 4) << (2 * ib));
    }
    for (int ib = 0; ib < kQK_K / 32; ++ib) {
      for (int j = 0; j < 16; ++j) {
        b.qs[16 * ib + j] = static_cast<uint8_t>(L[32 * ib + j] | (L[32 * ib + 16 + j] << 4));
      }
    }
    store_block(dst, i, b);
  }
}

void quantize_q6_k(const float* x, void* dst, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = make_qx_quants(16, 32, x + 16 * j, L + 16 * j);
      if (std::fabs(scales[j]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[j]);
        max_scale = scales[j];
      }
    }
    BlockQ6_K b;
    std::memset(&b, 0, sizeof(b));
    if (max_abs_scale < 1e-15f) {
      store_block(dst, i, b);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < kQK_K / 16; ++j) {
      b.scales[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[j])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_fp32(b.d) * b.scales[j];
      if (!d) continue;
      for (int l = 0; l < 16; ++l) {
        L[16 * j + l] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + l] / d), -32, 31) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = b.ql + 64 * h;
      uint8_t* qh = b.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                     ((Lh[l + 96] >> 4) << 6));
      }
    }
    store_block(dst, i, b);
  }
}

void quantize_q8_k(const float* x, void* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    BlockQ8_K b;
    quantize_block_q8_k(x, b.qs, &b.d, b.bsums);
    store_block(dst, i, b);
  }
}

// ---------------------------------------------------------------- dequantizers

void dequantize_q8_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK8_0) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kQK8_0; ++j) y[j] = b.qs[j] * d;
  }
}

void dequantize_q4_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK4_0) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[j] = ((b.qs[j] & 0xF) - 8) * d;
      y[j + 16] = ((b.qs[j] >> 4) - 8) * d;
    }
  }
}

// Value j of the 5-bit quants of a Q5_0 / Q5_1 block.
int q5_value(const uint8_t* qs, const uint8_t* qh, int j) {
  uint32_t high;
  std::memcpy(&high, qh, 4);
  const int low = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return low | static_cast<int>(((high >> j) & 1) << 4);
}

void dequantize_q4_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    for (int j = 0; j < 16; ++j) {
      y[j] = (b.qs[j] & 0xF) * d + m;
      y[j + 16] = (b.qs[j] >> 4) * d + m;
    }
  }
}

void dequantize_q5_0(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < 32; ++j) y[j] = (q5_value(b.qs, b.qh, j) - 16) * d;
  }
}

void dequantize_q5_1(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    for (int j = 0; j < 32; ++j) y[j] = q5_value(b.qs, b.qh, j) * d + m;
  }
}

void dequantize_iq4_nl(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += 32) {
    const auto b = load_block<BlockIQ4_NL>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * kIQ4NLValues[b.qs[j] & 0xF];
      y[j + 16] = d * kIQ4NLValues[b.qs[j] >> 4];
    }
  }
}

void dequantize_q4_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int c = 0; c < kQK_K / 64; ++c) {
      const uint8_t* q = b.qs + 32 * c;
      uint8_t sc, m;
      q4k_scale_min(2 * c, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4k_scale_min(2 * c + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int c = 0; c < kQK_K / 64; ++c) {
      const uint8_t* q = b.qs + 32 * c;
      uint8_t sc, m;
      q4k_scale_min(2 * c, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4k_scale_min(2 * c + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((q[l] & 0xF) + ((b.qh[l] >> (2 * c)) & 1) * 16) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((q[l] >> 4) + ((b.qh[l] >> (2 * c + 1)) & 1) * 16) - m2;
    }
  }
}

void dequantize_q3_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const int q = ((b.qs[32 * h + l] >> (2 * k)) & 3) - ((b.hmask[l] >> (4 * h + k)) & 1 ? 0 : 4);
      y[e] = d * (q3k_scale(e / 16, b.scales) - 32) * q;
    }
    y += kQK_K;
  }
}

void dequantize_q2_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t sc = b.scales[e / 16];
      y[e] = d * (sc & 0xF) * ((b.qs[32 * h + l] >> (2 * k)) & 3) - dmin * (sc >> 4);
    }
    y += kQK_K;
  }
}

void dequantize_iq4_xs(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockIQ4_XS>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int ib = 0; ib < kQK_K / 32; ++ib, y += 32) {
      const float dl = d * (iq4xs_scale(ib, b) - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIQ4NLValues[b.qs[16 * ib + j] & 0xF];
        y[j + 16] = dl * kIQ4NLValues[b.qs[16 * ib + j] >> 4];
      }
    }
  }
}

void dequantize_q6_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const uint8_t* ql = b.ql + 64 * h;
      const uint8_t* qh = b.qh + 32 * h;
      const int8_t* sc = b.scales + 8 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void dequantize_q8_k(const void* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK_K) {
    const auto b = load_block<BlockQ8_K>(src, i);
    for (int j = 0; j < kQK_K; ++j) y[j] = b.d * b.qs[j];
  }
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000 | (mant << 13));  // inf, NaN (payload kept)
  return bits_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) {
    // NaN: keep the top payload bits and force the quiet bit, as x86 F16C does.
    return static_cast<uint16_t>(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
  }
  // 65520 (0x477ff000) is halfway between the largest half 65504 and 65536: ties to even
  // round up, so everything from there on becomes infinity.
  if (ax >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);
  if (ax < 0x38800000) {
    // Below 2^-14: a half subnormal, in units of 2^-24. Float value = m * 2^(e - 150).
    const uint32_t e = ax >> 23;
    const uint32_t m = e ? ((ax & 0x7fffff) | 0x800000) : (ax & 0x7fffff);
    const uint32_t shift = (e ? 126 - e : 125);  // m * 2^(e-150) / 2^-24 = m >> shift
    if (shift >= 32) return sign;
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | r);
  }
  // Normal: rebias the exponent, then round the 13 dropped mantissa bits to nearest even;
  // a carry out of the mantissa correctly bumps the exponent.
  const uint32_t rebased = ax - ((127u - 15u) << 23);
  const uint32_t rounded = rebased + 0xfff + ((rebased >> 13) & 1);
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

float bf16_to_fp32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

void quantize_block_q8_k(const float* x, int8_t* qs, float* d, int16_t* bsums) {
  float max = 0;
  float amax = 0;
  for (int j = 0; j < kQK_K; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (!amax) {
    *d = 0;
    std::fill(qs, qs + kQK_K, 0);
    std::fill(bsums, bsums + kQK_K / 16, 0);
    return;
  }
  // -127 rather than -128 keeps every quant in [-127, 127] (symmetric, as ggml does).
  const float iscale = -127.f / max;
  for (int j = 0; j < kQK_K; ++j) qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
  for (int j = 0; j < kQK_K / 16; ++j) {
    int sum = 0;
    for (int l = 0; l < 16; ++l) sum += qs[16 * j + l];
    bsums[j] = static_cast<int16_t>(sum);
  }
  *d = 1 / iscale;
}

bool is_quantized(DType t) { return dtype_info(t).block_elems > 1; }

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / dtype_info(t).block_elems;
  LL_CHECK(nb * dtype_info(t).block_elems == n);
  const auto* bytes = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case DType::Q8_0:
      return dequantize_q8_0(src, dst, nb);
    case DType::Q4_0:
      return dequantize_q4_0(src, dst, nb);
    case DType::Q4_1:
      return dequantize_q4_1(src, dst, nb);
    case DType::Q5_0:
      return dequantize_q5_0(src, dst, nb);
    case DType::Q5_1:
      return dequantize_q5_1(src, dst, nb);
    case DType::IQ4_NL:
      return dequantize_iq4_nl(src, dst, nb);
    case DType::Q4_K:
      return dequantize_q4_k(src, dst, nb);
    case DType::Q6_K:
      return dequantize_q6_k(src, dst, nb);
    case DType::Q5_K:
      return dequantize_q5_k(src, dst, nb);
    case DType::Q3_K:
      return dequantize_q3_k(src, dst, nb);
    case DType::Q2_K:
      return dequantize_q2_k(src, dst, nb);
    case DType::IQ4_XS:
      return dequantize_iq4_xs(src, dst, nb);
    case DType::Q8_K:
      return dequantize_q8_k(src, dst, nb);
    default:
      LL_CHECK(false && "dequantize_row: unsupported type");
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  const int64_t nb = n / dtype_info(t).block_elems;
  LL_CHECK(nb * dtype_info(t).block_elems == n);
  auto* bytes = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(bytes + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0:
      return quantize_q8_0(src, dst, nb);
    case DType::Q4_0:
      return quantize_q4_0(src, dst, nb);
    case DType::Q4_1:
      return quantize_q4_1(src, dst, nb);
    case DType::Q5_0:
      return quantize_q5_0(src, dst, nb);
    case DType::Q5_1:
      return quantize_q5_1(src, dst, nb);
    case DType::IQ4_NL:
      return quantize_iq4_nl(src, dst, nb);
    case DType::Q4_K:
      return quantize_q4_k(src, dst, nb);
    case DType::Q6_K:
      return quantize_q6_k(src, dst, nb);
    case DType::Q5_K:
      return quantize_q5_k(src, dst, nb);
    case DType::Q3_K:
      return quantize_q3_k(src, dst, nb);
    case DType::Q2_K:
      return quantize_q2_k(src, dst, nb);
    case DType::IQ4_XS:
      return quantize_iq4_xs(src, dst, nb);
    case DType::Q8_K:
      return quantize_q8_k(src, dst, nb);
    default:
      LL_CHECK(false && "quantize_row: unsupported type");
  }
}

}  // namespace ll::kernels
