#pragma once
// How a weight matrix's bytes are laid out for matmul (kernels/matmul.h).
#include <cstdint>

namespace ll::kernels {

// kFile: as in the model file. kRowLanes: repacked by pack_row_lanes.
enum class WeightLayout : uint8_t { kFile, kRowLanes };

// The rows that kRowLanes interleaves, one per 32-bit lane of a 512-bit vector; a matrix's last
// rows % kRowLaneRows stay as in the file.
constexpr int kRowLaneRows = 16;

}  // namespace ll::kernels
