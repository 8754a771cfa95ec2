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

}  // namespace ll::cluster
