#include "server/head_status_feed.h"

#include "server/segment_memory.h"

#include <fmt/format.h>

#include <algorithm>

namespace ll::server {

HeadStatusFeed::HeadStatusFeed(StatusBoard& board, cluster::Head& head, const model::Model& model, int64_t n_ctx,
                               model::KvTypes kv_types)
    : board_(board), head_(head), hparams_(model.hparams()), graph_(graph::build_graph(model, kv_types)), n_ctx_(n_ctx) {
  std::vector<DeviceStatus> devices;
  for (const cluster::WorkerInfo& w : head_.workers()) {
    DeviceStatus d;
    d.name = w.name;
    d.address = w.address.endpoint;
    d.threads = w.threads;
    d.memory_limit_bytes = w.memory_limit;
    devices.push_back(std::move(d));
  }
  board_.set_devices(std::move(devices));
  publish_placement();
}

void HeadStatusFeed::publish_placement() {
  const std::vector<model::UnitRange>& segments = head_.segments();
  const auto same = [](model::UnitRange a, model::UnitRange b) { return a.begin == b.begin && a.end == b.end; };
  if (std::equal(segments.begin(), segments.end(), placement_.begin(), placement_.end(), same)) return;
  placement_ = segments;
  for (size_t i = 0; i < segments.size(); ++i) {
    const model::UnitRange r = segments[i];
    board_.set_placement(i, r.empty() ? "nothing" : model::describe_units(hparams_, r), r.empty() ? 0 : r.end - r.begin,
                         segment_memory_bytes(graph_, r, n_ctx_));
  }
}

void HeadStatusFeed::begin_run() {
  rebalances_seen_ = recoveries_seen_ = rejoins_seen_ = 0;
  run_began_ = StatusBoard::Clock::now();
}

void HeadStatusFeed::follow() {
  const cluster::RunTrace& trace = head_.trace();
  const auto name = [&](size_t w) { return w < trace.worker_names.size() ? trace.worker_names[w] : fmt::format("#{}", w); };
  std::vector<StageSample> stages;
  for (const cluster::TokenTrace& t : trace.tokens) {
    stages.clear();
    for (const cluster::StageTime& s : t.stages) stages.push_back({s.worker, s.compute_seconds, s.queue_seconds, s.send_seconds});
    board_.token(stages, run_began_ + std::chrono::duration_cast<StatusBoard::Clock::duration>(
                                          std::chrono::duration<double>(t.seconds)));
  }
  head_.forget_traced_tokens();  // read once: the trace of a server running for days stays small
  for (; rebalances_seen_ < trace.rebalances.size(); ++rebalances_seen_) {
    const cluster::RebalanceEvent& e = trace.rebalances[rebalances_seen_];
    board_.event("rebalance", e.aborted ? fmt::format("{} given up: {}", e.summary, e.why)
                                        : fmt::format("{} ({}); predicted gain {:.0f}%, stall {:.0f} ms", e.summary,
                                                      e.why, e.predicted_gain * 100, e.stall_seconds * 1000));
  }
  for (; recoveries_seen_ < trace.recoveries.size(); ++recoveries_seen_) {
    const cluster::RecoveryEvent& e = trace.recoveries[recoveries_seen_];
    board_.event("recovery", e.failed ? fmt::format("{} lost ({}); cannot go on: {}", name(e.worker), e.why, e.error)
                                      : fmt::format("{} lost ({}); now {}; replaying {} tokens of {} sequence(s)",
                                                    name(e.worker), e.why, e.summary, e.replayed_tokens, e.sequences));
  }
  for (; rejoins_seen_ < trace.rejoins.size(); ++rejoins_seen_) {
    board_.event("rejoin", fmt::format("{} answers again", name(trace.rejoins[rejoins_seen_].worker)));
  }
  publish_placement();
}

}  // namespace ll::server
