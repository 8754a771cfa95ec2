#include "graph/graph.h"

namespace ll::graph {
namespace {

void add_weight(GraphUnit& u, const model::WeightRef& w) {
  if (!w.present()) return;
  u.weights.push_back({w.tensor->name, w.type, w.tensor->nbytes});
  u.weight_bytes += w.tensor->nbytes;
}

double matmul_flops(const model::WeightRef& w) { return 2.0 * static_cast<double>(w.rows) * w.cols; }

}  // namespace

const TensorSpec* Graph::find_tensor(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Graph build_graph(const model::Model& m, model::KvTypes kv_types) {
  const auto& hp = m.hparams();
  const auto& w = m.weights();
  Graph g;
  g.tensors.push_back({"tokens", -1, 1, sizeof(int32_t)});
  std::string previous = "tokens";
  for (int64_t i = 0; i < model::unit_count(hp); ++i) {
    GraphUnit u;
    u.unit = model::unit_at(hp, i);
    u.name = model::unit_name(u.unit);
    for (const model::UnitWeight& uw : model::unit_weights(m.arch(), w, u.unit)) {
      add_weight(u, *uw.ref);
      if (uw.instance.spec->matvec) u.flops_fixed_per_token += matmul_flops(*uw.ref);
    }
    if (u.unit.kind == model::UnitKind::Attention) {
      u.flops_per_token_per_ctx = 4.0 * hp.n_head * hp.head_dim;
      u.kv_bytes_per_token = model::kv_bytes_per_token(hp, {i, i + 1}, kv_types);
    }
    u.inputs = {previous};
    const bool is_head = u.unit.kind == model::UnitKind::Head;
    const std::string out = is_head ? "logits" : u.name + ".out";
    u.outputs = {out};
    const int64_t elems = is_head ? hp.n_vocab : hp.n_embd;
    g.tensors.push_back({out, i, elems, static_cast<uint64_t>(elems) * sizeof(float)});
    previous = out;
    g.units.push_back(std::move(u));
  }
  return g;
}

}  // namespace ll::graph
