#include "graph/graph_json.h"

namespace ll::graph {

nlohmann::json to_json(const Graph& graph, int64_t n_ctx) {
  nlohmann::json units = nlohmann::json::array();
  for (size_t i = 0; i < graph.units.size(); ++i) {
    const auto& u = graph.units[i];
    nlohmann::json weights = nlohmann::json::array();
    for (const auto& w : u.weights) weights.push_back({{"name", w.name}, {"type", dtype_name(w.type)}, {"bytes", w.bytes}});
    units.push_back({{"index", i}, {"name", u.name}, {"weights", weights}, {"weight_bytes", u.weight_bytes},
                     {"kv_bytes_per_token", u.kv_bytes_per_token},
                     {"flops_decode", u.decode_flops(n_ctx)}, {"flops_prompt_64", u.prompt_flops(64, 0)},
                     {"flops_fixed_per_token", u.flops_fixed_per_token},
                     {"flops_per_token_per_ctx", u.flops_per_token_per_ctx}, {"inputs", u.inputs},
                     {"outputs", u.outputs}});
  }
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : graph.tensors) {
    tensors.push_back({{"name", t.name}, {"producer", t.producer}, {"bytes_per_token", t.bytes_per_token}});
  }
  return {{"context_for_decode_flops", n_ctx}, {"units", units}, {"tensors", tensors}};
}

}  // namespace ll::graph
