// pack_row_lanes: the weight layout that the AVX-512 VNNI kernels (matmul_vnni-inl.h) read
// without transposing, laid out once at load instead of at every token.
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/matmul.h"
#include "kernels/matmul_internal.h"

namespace ll::kernels {

namespace {

// Q4_0's and Q8_0's blocks start with a 2-byte fp16 scale, which packs as one vector of 16
// scales; the dwords after it (or a Q4_K block's 36 dwords) pack as vectors of 16 dwords.
int64_t scale_bytes(DType t) { return t == DType::Q4_K ? 0 : 2; }

}  // namespace

bool packs_row_lanes(DType t) { return detail::target_packs_row_lanes(t); }

void pack_row_lanes(DType t, void* W, int64_t rows, int64_t cols) {
  LL_CHECK(packs_row_lanes(t));
  const int64_t rb = row_bytes(t, cols);
  const int64_t block_bytes = dtype_info(t).block_bytes;
  const int64_t blocks = rb / block_bytes;
  const int64_t head = scale_bytes(t);
  const int64_t dwords = (block_bytes - head) / 4;
  // Q8_0's signed quants become unsigned (plus 128), as vpdpbusd takes them.
  const uint32_t flip = t == DType::Q8_0 ? 0x80808080u : 0;
  std::vector<uint8_t> group(static_cast<size_t>(kRowLaneRows * rb));
  for (int64_t r0 = 0; r0 + kRowLaneRows <= rows; r0 += kRowLaneRows) {
    uint8_t* out = static_cast<uint8_t*>(W) + r0 * rb;
    std::memcpy(group.data(), out, group.size());
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t j = 0; j < kRowLaneRows; ++j) {
        const uint8_t* block = group.data() + j * rb + b * block_bytes;
        std::memcpy(out + head * j, block, head);
        for (int64_t m = 0; m < dwords; ++m) {
          uint32_t quants;
          std::memcpy(&quants, block + head + 4 * m, 4);
          quants ^= flip;
          std::memcpy(out + head * kRowLaneRows + 4 * (kRowLaneRows * m + j), &quants, 4);
        }
      }
      out += kRowLaneRows * block_bytes;
    }
  }
}

}  // namespace ll::kernels
