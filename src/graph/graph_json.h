#pragma once
// The unit graph as JSON: every unit with its weights, costs and tensors, and every tensor
// with its producer, as `lingualinked graph --json` prints it.
#include <nlohmann/json.hpp>

#include <cstdint>

#include "graph/graph.h"

namespace ll::graph {

// Decode FLOPs are given at a context of n_ctx positions, prompt FLOPs for a chunk of 64 tokens.
nlohmann::json to_json(const Graph& graph, int64_t n_ctx);

}  // namespace ll::graph
