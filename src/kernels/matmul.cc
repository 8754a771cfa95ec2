// matmul driver: quantizes the activations once, then splits weight rows across threads.
#include "kernels/matmul.h"

#include <algorithm>

#include "core/check.h"
#include "core/quant_blocks.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul_internal.h"

namespace ll::kernels {
namespace detail {
namespace {

int64_t align64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

int64_t acts_bytes(DType t, int64_t cols, int64_t n) {
  const int be = act_block_elems(t);
  if (be == 0) return 0;
  const int64_t blocks = cols / be;
  const int64_t qs = align64(blocks * be * n);
  const int64_t d = align64(blocks * n * static_cast<int64_t>(sizeof(float)));
  const int64_t bsums = be == 32 ? 0 : align64(blocks * 16 * n * static_cast<int64_t>(sizeof(int16_t)));
  const int64_t sums = act_has_block_sums(t) ? d : 0;
  return qs + d + bsums + sums;
}

QuantizedActs acts_layout(DType t, int64_t cols, int64_t n, void* buffer) {
  const int be = act_block_elems(t);
  QuantizedActs a;
  if (be == 0) return a;
  a.blocks = cols / be;
  // Token rows of qs are contiguous; each is a multiple of 32 bytes long, so every block
  // stays 32-byte aligned for the kernels' aligned loads.
  auto* p = static_cast<uint8_t*>(buffer);
  a.qs = reinterpret_cast<int8_t*>(p);
  p += align64(a.blocks * be * n);
  a.d = reinterpret_cast<float*>(p);
  p += align64(a.blocks * n * static_cast<int64_t>(sizeof(float)));
  if (be == kQK_K) a.bsums = reinterpret_cast<int16_t*>(p);
  if (act_has_block_sums(t)) a.s = reinterpret_cast<float*>(p);
  return a;
}

}  // namespace detail

namespace {

// Per calling thread, so concurrent matmuls from different threads do not share it.
uint8_t* scratch(int64_t bytes) {
  thread_local hwy::AlignedFreeUniquePtr<uint8_t[]> buffer;
  thread_local int64_t capacity = 0;
  if (bytes > capacity) {
    buffer = hwy::AllocateAligned<uint8_t>(static_cast<size_t>(bytes));
    LL_CHECK(buffer != nullptr);
    capacity = bytes;
  }
  return buffer.get();
}

// Chunks of rows start at multiples of this, so that every thread runs whole row tiles.
constexpr int64_t kRowAlign = 16;
// Each chunk takes 1/(kSharesPerThread x threads) of the rows left: the first chunks are long,
// and a thread slowed down by a busy or slower core still leaves the others enough to take.
constexpr int64_t kSharesPerThread = 2;
// Below this many weight bytes x tokens, waking the other threads costs more than it saves.
constexpr int64_t kMinParallelBytes = 64 * 1024;

}  // namespace

void matmul(DType t, const void* W, int64_t rows, int64_t cols, const float* X, int64_t n, float* Y,
            ThreadPool* pool, WeightLayout layout) {
  LL_CHECK(dtype_info(t).computable);
  LL_CHECK(layout == WeightLayout::kFile || packs_row_lanes(t));
  const int be = detail::act_block_elems(t);
  LL_CHECK(cols % dtype_info(t).block_elems == 0 && (be == 0 || cols % be == 0));
  detail::MatmulJob job{t, static_cast<const uint8_t*>(W), rows, cols, row_bytes(t, cols), X, n, Y, {}, layout};
  if (be != 0) job.acts = detail::acts_layout(t, cols, n, scratch(detail::acts_bytes(t, cols, n)));

  const int nth = pool ? pool->size() : 1;
  if (nth == 1 || rows < 2 * kRowAlign || job.row_bytes * rows * n < kMinParallelBytes) {
    detail::quantize_acts(job, 0, n);
    detail::RowDispenser all(rows, rows, 1);
    detail::matmul_rows(job, all);
    return;
  }
  if (be != 0) {
    if (n == 1) {
      detail::quantize_acts(job, 0, 1);
    } else {
      pool->parallel_for(n, [&](int64_t t0, int64_t t1) { detail::quantize_acts(job, t0, t1); });
    }
  }
  detail::RowDispenser chunks(rows, kRowAlign, kSharesPerThread * nth);
  pool->run([&](int, int) { detail::matmul_rows(job, chunks); });
}

}  // namespace ll::kernels
