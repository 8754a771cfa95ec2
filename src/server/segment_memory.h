#pragma once
// What a device holding some units of a model needs, as the planner counts it: their weights
// and a KV cache of n_ctx positions (not the working buffers, not the process itself).
#include <cstdint>

#include "graph/graph.h"

namespace ll::server {

inline uint64_t segment_memory_bytes(const graph::Graph& graph, model::UnitRange units, int64_t n_ctx) {
  uint64_t total = 0;
  for (int64_t u = units.begin; u < units.end; ++u) {
    const graph::GraphUnit& g = graph.units.at(static_cast<size_t>(u));
    total += g.weight_bytes + g.kv_bytes_per_token * static_cast<uint64_t>(n_ctx);
  }
  return total;
}

// Says so on the web page and in /v1/status.
inline constexpr const char* kSegmentMemoryNote = "memory used: what the units need (weights and a KV cache of n_ctx "
                                                  "positions), by the model's accounting; limit: what the device offers";

}  // namespace ll::server
