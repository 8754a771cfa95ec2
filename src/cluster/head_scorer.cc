#include "cluster/head_scorer.h"

namespace ll::cluster {

exec::ScoreSequences score_on_head(Head& head) {
  return [&head](const std::vector<std::vector<int32_t>>& sequences) -> Result<std::vector<std::vector<float>>> {
    std::vector<std::vector<float>> out;
    for (auto& scored : head.score(sequences)) {
      if (!scored.ok()) return scored.status();
      out.push_back(std::move(scored).value());
    }
    return out;
  };
}

}  // namespace ll::cluster
