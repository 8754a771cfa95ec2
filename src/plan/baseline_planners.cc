// The splits other systems use, as baselines: layers in proportion to a weight per device
// (equal weights: llama.cpp's default even split; usable memory: llama.cpp's --tensor-split
// by free memory and exo's memory-weighted ring). The embedding goes with the first layers,
// the head with the last; compute speed and links are ignored.
#include <cmath>

#include "plan/planners.h"

namespace ll::plan {
namespace {

Result<Assignment> proportional(const CostModel& c, const std::vector<double>& weight) {
  const auto& g = c.graph();
  const int64_t N = c.n_units();
  std::vector<int64_t> layer_start;  // unit index of every layer's first (attention) unit
  for (int64_t u = 0; u < N; ++u) {
    if (g.units[u].unit.kind == model::UnitKind::Attention) layer_start.push_back(u);
  }
  const int64_t L = static_cast<int64_t>(layer_start.size());
  double total = 0;
  for (double w : weight) total += w;
  if (total <= 0) return Status::Error("no device has usable memory");
  // The unit where the segment starting at layer l begins: the embedding joins the first
  // layers and the head the last.
  auto unit_of_layer = [&](int64_t l) { return l == 0 ? 0 : (l == L ? N : layer_start[l]); };
  Assignment a;
  double cumulative = 0;
  int64_t begin_layer = 0;
  for (size_t d = 0; d < weight.size(); ++d) {
    cumulative += weight[d];
    const int64_t end_layer = d + 1 == weight.size() ? L : std::llround(L * cumulative / total);
    a.ranges.push_back({unit_of_layer(begin_layer), unit_of_layer(end_layer)});
    begin_layer = end_layer;
  }
  if (L == 0) a.ranges[0] = {0, N};
  return a;
}

}  // namespace

Result<Assignment> plan_even(const CostModel& cost, const PlanOptions&) {
  return proportional(cost, std::vector<double>(cost.n_devices(), 1.0));
}

Result<Assignment> plan_memory(const CostModel& cost, const PlanOptions&) {
  std::vector<double> weight;
  for (int d = 0; d < cost.n_devices(); ++d) weight.push_back(static_cast<double>(cost.limit_bytes(d)));
  return proportional(cost, weight);
}

}  // namespace ll::plan
