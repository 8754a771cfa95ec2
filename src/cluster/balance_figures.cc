#include "cluster/balance_figures.h"

#include <algorithm>
#include <map>

namespace ll::cluster {

BalanceFigures balance_figures(const RunTrace& trace, double change_seconds) {
  BalanceFigures f;
  if (!trace.tokens.empty()) {
    double first = trace.tokens.front().seconds, last = first;
    for (const auto& t : trace.tokens) {
      first = std::min(first, t.seconds);
      last = std::max(last, t.seconds);
    }
    // A span (a, b] counts the tokens that arrived in it: the first token only starts the clock.
    auto rate = [&](double a, double b) -> std::optional<double> {
      if (b <= a) return std::nullopt;
      size_t n = 0;
      for (const auto& t : trace.tokens) n += t.seconds > a && t.seconds <= b;
      return static_cast<double>(n) / (b - a);
    };
    f.tokens_per_second_before = rate(first, std::min(change_seconds, last));
    f.tokens_per_second_after = rate(std::max(change_seconds, first), last);
  }

  for (const auto& r : trace.rebalances) {
    f.longest_stall_seconds = std::max(f.longest_stall_seconds, r.stall_seconds);
    if (r.aborted) continue;
    ++f.rebalances;
    if (r.switched_seconds >= change_seconds &&
        (!f.seconds_to_first_switch || r.switched_seconds - change_seconds < *f.seconds_to_first_switch)) {
      f.seconds_to_first_switch = r.switched_seconds - change_seconds;
    }
  }

  std::map<size_t, double> previous;  // per request, the time of its latest token
  for (const auto& t : trace.tokens) {
    const auto [it, first_of_request] = previous.try_emplace(t.request, t.seconds);
    if (!first_of_request) {
      f.longest_token_gap_seconds = std::max(f.longest_token_gap_seconds, t.seconds - it->second);
      it->second = t.seconds;
    }
  }
  return f;
}

}  // namespace ll::cluster
