#pragma once
// How a weight matrix's bytes are laid out for matmul (kernels/matmul.h).
#include <cstdint>

namespace ll::kernels {

// kFile: as in the model file. kRowLanes: repacked by pack_row_lanes.
enum class WeightLayout : uint8_t { kFile, kRowLanes };

}  // namespace ll::kernels
