#pragma once
// The figures `cluster-bench --balance off,on` reports for a run around one change of a
// device's speed: how fast before and after it, how soon the balancer switched, how long the
// pipeline stood still.
#include <optional>

#include "cluster/run_trace.h"

namespace ll::cluster {

struct BalanceFigures {
  // Tokens of all requests per second from the first token to the change, and from the change
  // to the last token; a span counts the tokens that arrived after its start up to its end.
  // nullopt when the span is empty (the change came before the first token or after the last).
  std::optional<double> tokens_per_second_before, tokens_per_second_after;
  size_t rebalances = 0;  // switched (not given up)
  // From the change to the first switch at or after it; nullopt when none followed.
  std::optional<double> seconds_to_first_switch;
  double longest_stall_seconds = 0;  // the largest RebalanceEvent::stall_seconds (given up ones too)
  // The longest wait between two consecutive tokens of one request (trace.tokens in the order
  // they arrived); it includes stalls the balancer did not account for.
  double longest_token_gap_seconds = 0;
};

BalanceFigures balance_figures(const RunTrace& trace, double change_seconds);

}  // namespace ll::cluster
