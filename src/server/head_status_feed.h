#pragma once
// Tells a StatusBoard what a cluster head does: its workers as devices, each generated token's
// stage times, and the rebalances, recoveries and rejoins, as the head's RunTrace records them.
// Threading: call begin_run() and follow() on the thread that drives the head (the trace is the
// head's, not thread-safe); follow() forwards only what the trace gained since its last call, so
// it may be called after every token or after every batch of steps, and then drops the tokens it
// forwarded from the trace (a server's run may last for days).
#include <vector>

#include "cluster/head.h"
#include "graph/graph.h"
#include "server/status_board.h"

namespace ll::server {

class HeadStatusFeed {
 public:
  // `head` must be loaded, and it and `board` must outlive the feed. The memory a device's units
  // need is counted from `model`'s graph: their weights and a KV cache of n_ctx positions.
  HeadStatusFeed(StatusBoard& board, cluster::Head& head, const model::Model& model, int64_t n_ctx,
                 model::KvTypes kv_types);
  // The head's trace starts anew with each run: call this just before it begins.
  void begin_run();
  void follow();

 private:
  void publish_placement();

  StatusBoard& board_;
  cluster::Head& head_;
  const model::HParams hparams_;
  const graph::Graph graph_;
  const int64_t n_ctx_;
  std::vector<model::UnitRange> placement_;  // as last told to the board
  StatusBoard::Clock::time_point run_began_;  // about when the trace's clock began
  size_t rebalances_seen_ = 0, recoveries_seen_ = 0, rejoins_seen_ = 0;
};

}  // namespace ll::server
