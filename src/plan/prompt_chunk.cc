#include "plan/prompt_chunk.h"

#include <algorithm>

namespace ll::plan {

std::vector<PromptStageCost> prompt_stage_costs(const CostModel& cost, const std::vector<model::UnitRange>& ranges,
                                                const std::vector<size_t>& order) {
  std::vector<PromptStageCost> stages;
  for (size_t i = 0; i < order.size(); ++i) {
    const int d = static_cast<int>(order[i]);
    const model::UnitRange r = ranges[order[i]];
    const profile::DeviceProfile& p = cost.device(d);
    double one = 0, chunk = 0;  // one token decoded; one token of a timed prompt chunk
    for (int64_t u = r.begin; u < r.end; ++u) {
      one += p.decode_seconds[u];
      if (static_cast<size_t>(u) < p.prompt_seconds_per_token.size()) chunk += p.prompt_seconds_per_token[u];
    }
    // t(n) = fixed + n x per_token through t(1) = one and t(P) = P x chunk.
    const double P = static_cast<double>(std::max<int64_t>(p.prompt_chunk, 1));
    PromptStageCost c;
    c.per_token_seconds = P > 1 && chunk > 0 ? std::max(0.0, (P * chunk - one) / (P - 1)) : one;
    c.fixed_seconds = std::max(0.0, one - c.per_token_seconds);
    stages.push_back(c);
    if (i + 1 == order.size() || r.empty()) continue;
    const int next = static_cast<int>(order[i + 1]);
    const profile::LinkProfile& link = cost.link(d, next);
    stages.push_back({.fixed_seconds = link.rtt_seconds / 2,
                      .per_token_seconds = static_cast<double>(cost.cut_bytes(r.end - 1)) / link.bandwidth_bytes_per_s});
  }
  return stages;
}

std::vector<PromptStageCost> prompt_stage_costs(const graph::Graph& g, const profile::ClusterProfile& profile,
                                                const CostOptions& options, const std::vector<model::UnitRange>& ranges,
                                                const std::vector<size_t>& order) {
  if (profile.devices.size() != ranges.size()) return {};
  for (size_t d : order) {
    if (d >= ranges.size()) return {};
  }
  auto cost = CostModel::create(g, profile.devices, profile.links, options);
  if (!cost.ok()) return {};
  return prompt_stage_costs(cost.value(), ranges, order);
}

double prompt_seconds(const std::vector<PromptStageCost>& stages, int64_t n_tokens, int64_t chunk) {
  chunk = std::clamp<int64_t>(chunk, 1, std::max<int64_t>(n_tokens, 1));
  // done[s]: when resource s finished the previous chunk.
  std::vector<double> done(stages.size(), 0.0);
  for (int64_t begin = 0; begin < n_tokens; begin += chunk) {
    const double n = static_cast<double>(std::min(chunk, n_tokens - begin));
    double ready = 0;  // when the chunk left the resource before
    for (size_t s = 0; s < stages.size(); ++s) {
      done[s] = std::max(done[s], ready) + stages[s].fixed_seconds + n * stages[s].per_token_seconds;
      ready = done[s];
    }
  }
  return done.empty() ? 0.0 : done.back();
}

int64_t choose_prompt_chunk(const std::vector<PromptStageCost>& stages, int64_t n_tokens) {
  if (stages.empty() || n_tokens <= 1) return std::max<int64_t>(n_tokens, 1);
  std::vector<double> seconds(static_cast<size_t>(n_tokens) + 1);
  double best = prompt_seconds(stages, n_tokens, n_tokens);
  for (int64_t c = 1; c <= n_tokens; ++c) {
    seconds[c] = prompt_seconds(stages, n_tokens, c);
    best = std::min(best, seconds[c]);
  }
  for (int64_t c = n_tokens; c >= 1; --c) {
    if (seconds[c] <= best * 1.02) return c;
  }
  return n_tokens;
}

}  // namespace ll::plan
