#pragma once
// The model as a graph of units with their costs. Edges are named tensors: a unit may read
// a tensor produced by any earlier unit, so residual and skip connections are explicit.
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "model/model.h"
#include "model/units.h"

namespace ll::graph {

struct WeightInfo {
  std::string name;
  DType type;
  uint64_t bytes;
};

// A tensor flowing between units; `elements_per_token` floats per token.
struct TensorSpec {
  std::string name;
  int64_t producer;  // unit index, -1 for a graph input (the token ids)
  int64_t elements_per_token;
  uint64_t bytes_per_token;  // as sent between devices
};

struct GraphUnit {
  std::string name;  // "embed", "attn[3]", "ffn[3]", "head"
  model::Unit unit;
  std::vector<WeightInfo> weights;
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_token = 0;  // attention units: K and V, in the cache types of build_graph
  // FLOPs: matrix products are 2 * rows * cols per token; attention adds 4 * heads * head_dim
  // per (token, attended position).
  double flops_fixed_per_token = 0;      // independent of the context
  double flops_per_token_per_ctx = 0;    // times the number of attended positions
  std::vector<std::string> inputs;   // tensor names
  std::vector<std::string> outputs;  // tensor names

  // One decode step at context length n_ctx (the token attends to n_ctx positions).
  double decode_flops(int64_t n_ctx) const { return flops_fixed_per_token + flops_per_token_per_ctx * n_ctx; }
  // A prompt chunk of m tokens appended after n_past positions.
  double prompt_flops(int64_t m, int64_t n_past) const {
    return flops_fixed_per_token * m + flops_per_token_per_ctx * (m * n_past + m * (m + 1) / 2.0);
  }
};

struct Graph {
  std::vector<GraphUnit> units;
  std::vector<TensorSpec> tensors;
  const TensorSpec* find_tensor(const std::string& name) const;
};

// Llama family: embed -> attn[0] -> ffn[0] -> ... -> head, each unit reading the residual
// stream its predecessor wrote ("<unit>.out"); the embedding reads the graph input "tokens".
Graph build_graph(const model::Model& model, model::KvTypes kv_types = {});

}  // namespace ll::graph
