// Highway SIMD kernels of matmul, compiled once per target (foreach_target) and chosen at
// run time. This file is the dispatch unit; the kernels are in the -inl.h files it includes
// (each compiled once per target):
//   matmul_tiles-inl.h  tiling, prefetch and the float-weight tiles
//   matmul_acts-inl.h   activation quantization (Q8_0, Q8_K)
//   matmul_avx2-inl.h   integer kernels on x86 targets with AVX2 and better (intrinsics)
//   matmul_vnni-inl.h   Q4_0, Q8_0 and Q4_K kernels on AVX-512 VNNI (AVX3_DL), ahead of the AVX2 ones
//   matmul_hwy-inl.h    integer kernels on every other target (portable Highway)
//   matmul_q32_hwy-inl.h  Q4_1, Q5_0, Q5_1, IQ4_NL kernels (AVX2 intrinsics or portable Highway)
//   matmul_kquant_hwy-inl.h  Q5_K, Q3_K, Q2_K, IQ4_XS on every target (portable Highway)
// Scalar twins are in matmul_reference.cc.
//
// Decoding (n = 1) is bound by memory bandwidth, so the kernels keep the work per weight
// byte small enough to run at the speed of memory: partial sums stay in vector accumulators
// and are reduced once per row, per-block float work is shared by pairs of blocks (and, for
// Q4_0, by four rows; on AVX-512 VNNI a vector holds 16 rows, so nothing is reduced), and the
// next rows are prefetched. Prompts (n > 1) use tiles of weight
// rows x tokens, so each weight block is loaded and unpacked once for several tokens while
// the tokens' activations stay in L1.
//
// Tiles keep arrays of vectors, which sizeless (SVE, RVV) vector types cannot be; those
// machines run the NEON / baseline code instead.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_simd.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"
#include "kernels/matmul_tiles-inl.h"
#include "kernels/matmul_acts-inl.h"
#include "kernels/matmul_avx2-inl.h"
#include "kernels/matmul_vnni-inl.h"
#include "kernels/matmul_hwy-inl.h"
#include "kernels/matmul_q32_hwy-inl.h"
#include "kernels/matmul_kquant_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ll::kernels::detail {
namespace HWY_NAMESPACE {

void MatmulRows(const MatmulJob& job, RowDispenser& rows) {
  switch (job.type) {
    case DType::F32:
      return ForEachChunk<4, 2>(job, rows, FloatTile<DType::F32>{job});
    case DType::F16:
      return ForEachChunk<4, 2>(job, rows, FloatTile<DType::F16>{job});
    case DType::BF16:
      return ForEachChunk<4, 2>(job, rows, FloatTile<DType::BF16>{job});
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::IQ4_NL:
      return Q32MatmulRows(job, rows);
    case DType::Q5_K:
    case DType::Q3_K:
    case DType::Q2_K:
    case DType::IQ4_XS:
      return KQuantMatmulRows(job, rows);
#if LL_X86_VNNI
    case DType::Q4_0:
    case DType::Q8_0:
    case DType::Q4_K:
      return VnniMatmulRows(job, rows);
#endif
    default:
      return QuantizedMatmulRows(job, rows);
  }
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

bool PacksRowLanes(DType t) {
#if LL_X86_VNNI
  return t == DType::Q4_0 || t == DType::Q8_0 || t == DType::Q4_K;
#else
  (void)t;
  return false;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace ll::kernels::detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ll::kernels {
namespace detail {

HWY_EXPORT(QuantizeActs);
HWY_EXPORT(MatmulRows);
HWY_EXPORT(TargetName);
HWY_EXPORT(PacksRowLanes);

void quantize_acts(const MatmulJob& job, int64_t t0, int64_t t1) {
  HWY_DYNAMIC_DISPATCH(QuantizeActs)(job, t0, t1);
}

void matmul_rows(const MatmulJob& job, RowDispenser& rows) { HWY_DYNAMIC_DISPATCH(MatmulRows)(job, rows); }

const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

bool target_packs_row_lanes(DType t) { return HWY_DYNAMIC_DISPATCH(PacksRowLanes)(t); }

int64_t compiled_targets() { return HWY_TARGETS; }

}  // namespace detail

const char* simd_target_name() { return detail::target_name(); }

}  // namespace ll::kernels
#endif  // HWY_ONCE
