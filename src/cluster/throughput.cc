#include "cluster/throughput.h"

#include <algorithm>
#include <limits>

namespace ll::cluster {

Result<double> steady_generation_tps(const std::vector<Generation>& gens) {
  if (gens.empty()) return Status::Error("no sequences");
  double from = 0, to = std::numeric_limits<double>::infinity();
  for (const Generation& g : gens) {
    if (g.token_seconds.size() < 2) {
      return Status::Error("a sequence generated fewer than 2 tokens: no generation speed to measure");
    }
    from = std::max(from, g.token_seconds.front());
    to = std::min(to, g.token_seconds.back());
  }
  uint64_t tokens = 0;
  for (const Generation& g : gens) {
    for (double t : g.token_seconds) tokens += t > from && t <= to;
  }
  if (to <= from || tokens == 0) return Status::Error("the sequences never generated at the same time");
  return static_cast<double>(tokens) / (to - from);
}

GenerationTotals total_generations(const std::vector<Generation>& gens, size_t n_stages) {
  GenerationTotals t;
  t.stages.resize(n_stages);
  for (const Generation& g : gens) {
    for (size_t s = 0; s < n_stages && s < g.stages.size(); ++s) {
      t.stages[s].steps += g.stages[s].steps;
      t.stages[s].compute_us += g.stages[s].compute_us;
      t.stages[s].queue_us += g.stages[s].queue_us;
      t.stages[s].send_us += g.stages[s].send_us;
    }
    t.decode_steps += g.decode_steps;
    t.round_trip_us += g.round_trip_us;
    t.wire_bytes += g.wire_bytes;
  }
  return t;
}

}  // namespace ll::cluster
