#include "cluster/rebalancer.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cluster/pipeline.h"
#include "plan/rebalance.h"

namespace ll::cluster {
namespace {

using Clock = RunController::Clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// A stage expected to take less than this share of a token's compute is judged by speed probes.
constexpr double kLightStageShare = 0.1;
// A worker's speed as profiled: the fastest of its first probes.
constexpr int kBaselineProbes = 3;
// How long decisions must keep wanting a switch before it is made.
constexpr double kPersistSeconds = 0.5;
// For this long after a switch, a new plan must save this share of the time per token.
constexpr std::chrono::seconds kSettleTime{5};
constexpr double kSettlingGain = 0.25;

}  // namespace

Rebalancer::Rebalancer(BalancerSetup setup, BalanceOptions options, std::vector<model::UnitRange> ranges)
    : setup_(std::move(setup)),
      options_(std::move(options)),
      ranges_(std::move(ranges)),
      lost_(ranges_.size(), false),
      last_heard_(ranges_.size()),
      rejoin_(ranges_.size()),
      monitor_(ranges_.size()),
      probe_baseline_(ranges_.size(), 0),
      baseline_probes_(ranges_.size(), 0) {
  update_expected();
}

void Rebalancer::update_expected() {
  expected_.clear();
  if (!setup_.planning) return;
  expected_ = expected_compute_seconds(setup_.planning->profile.devices, ranges_);
  double total = 0;
  for (double e : expected_) total += e;
  // A stage of a few cheap units (the embedding alone, say) measures its fixed costs, not the
  // device's speed: such a worker is judged by speed probes, as one that holds nothing.
  for (double& e : expected_) {
    if (e < kLightStageShare * total) e = 0;
  }
}

bool Rebalancer::judged_by_probe(size_t w) const { return expected_.empty() || expected_[w] == 0; }

void Rebalancer::configure(BalanceOptions options, std::optional<BalancePlanning> planning) {
  options_ = std::move(options);
  setup_.planning = std::move(planning);
  update_expected();
  tokens_seen_ = 0;
  next_forced_ = 0;
  monitor_.reset_all();
}

std::vector<size_t> Rebalancer::stages() const {
  std::vector<size_t> out;
  for (size_t w = 0; w < ranges_.size(); ++w) {
    if (!ranges_[w].empty()) out.push_back(w);
  }
  return out;
}

void Rebalancer::report(const GenerationRun& run, const std::string& line) const {
  if (options_.report) options_.report(fmt::format("[{:.2f} s] {}", run.seconds_since_start(run.now()), line));
}

Status Rebalancer::send(GenerationRun& run, size_t worker, wire::Envelope& e) {
  e.set_request_id(run.next_request_id());
  attempt_->request_worker[e.request_id()] = worker;
  return run.links().send(worker, e);
}

std::vector<Rebalancer::Move> Rebalancer::moves(const std::vector<model::UnitRange>& after) const {
  std::vector<Move> out;
  auto owner = [](const std::vector<model::UnitRange>& ranges, int64_t u) {
    for (size_t w = 0; w < ranges.size(); ++w) {
      if (ranges[w].contains(u)) return w;
    }
    return ranges.size();
  };
  const int64_t n_units = static_cast<int64_t>(setup_.graph.units.size());
  for (int64_t u = 0; u < n_units; ++u) {
    const size_t from = owner(ranges_, u), to = owner(after, u);
    if (from == to) continue;
    if (!out.empty() && out.back().from == from && out.back().to == to && out.back().units.end == u) {
      out.back().units.end = u + 1;
    } else {
      out.push_back({from, to, {u, u + 1}});
    }
  }
  return out;
}

void Rebalancer::on_token(GenerationRun& run, const wire::TokenResult& token) {
  ++tokens_seen_;
  // A token went through every stage: each was alive when it passed.
  for (size_t w : run.stages()) last_heard_[w] = run.now();
  if (!setup_.planning || phase_ != Phase::Idle) return;  // timings of a pipeline about to change mislead
  TokenTrace t{.seconds = monitor_time(run.now()), .request = 0, .stages = {}};
  const std::vector<size_t>& stages = run.stages();
  for (int s = 0; s < token.timings_size() && s < static_cast<int>(stages.size()); ++s) {
    t.stages.push_back({stages[s], token.timings(s).compute_us() / 1e6, token.timings(s).send_us() / 1e6});
  }
  monitor_.add_token(t, expected_);
}

// SpeedProbe { repetitions } -> the workers that hold nothing (all: every worker, for the baselines).
void Rebalancer::probe_idle(GenerationRun& run, bool all) {
  for (size_t w = 0; w < ranges_.size(); ++w) {
    if (!all && !judged_by_probe(w)) continue;
    if (lost_[w] || run.links().disconnected(w)) continue;
    bool outstanding = false;
    for (const auto& [id, worker] : probes_) outstanding = outstanding || worker == w;
    if (outstanding) continue;
    wire::Envelope e;
    e.set_request_id(run.next_request_id());
    e.mutable_speed_probe()->set_repetitions(3);
    if (run.links().send(w, e).ok()) probes_[e.request_id()] = w;
  }
}

// A worker holds its old and its new segment at once until the switch: the weights of both
// (units of the same file counted once) must fit its memory.
std::string Rebalancer::too_full_while_switching(const std::vector<model::UnitRange>& after) const {
  const auto& devices = setup_.planning->profile.devices;
  for (size_t w = 0; w < after.size(); ++w) {
    uint64_t bytes = 0;
    for (int64_t u = 0; u < static_cast<int64_t>(setup_.graph.units.size()); ++u) {
      if (ranges_[w].contains(u) || after[w].contains(u)) bytes += setup_.graph.units[u].weight_bytes;
    }
    if (bytes + setup_.planning->cost.working_bytes > devices[w].usable_memory_bytes) {
      return fmt::format("{} cannot hold its old and new units at once ({:.1f} MiB in {:.1f} MiB)", setup_.names[w],
                         bytes / 1048576.0, devices[w].usable_memory_bytes / 1048576.0);
    }
  }
  return "";
}

plan::RebalanceInput Rebalancer::planning_input(std::vector<double> slowdown) const {
  const BalancePlanning& planning = *setup_.planning;
  plan::RebalanceInput in;
  in.devices = planning.profile.devices;
  in.links = planning.profile.links;
  in.cost = planning.cost;
  in.plan = planning.plan;
  in.plan.planner = plan::Planner::Dp;  // exact as milp, in well under a millisecond (plan/rebalance.h)
  in.slowdown = std::move(slowdown);
  in.current = ranges_;
  for (bool lost : lost_) in.available.push_back(!lost);
  return in;
}

void Rebalancer::decide(GenerationRun& run) {
  const Clock::time_point now = run.now();
  const double t = monitor_time(now);
  if (now >= next_probe_) {
    probe_idle(run, /*all=*/false);
    next_probe_ = now + std::chrono::seconds(1);
  }
  // A lost worker takes no units (in.available); any factor stands in for its unknown speed.
  for (size_t w = 0; w < lost_.size(); ++w) {
    if (lost_[w]) monitor_.set_idle_probe(w, 1.0);
  }
  auto slowdowns = monitor_.slowdowns(t);
  if (!slowdowns) return;
  plan::RebalanceInput in = planning_input(*slowdowns);
  // Under a CPU quota a stage's slowdown depends somewhat on how much it holds, so the first
  // measurements after a switch can argue for moving part of it back: for a while after a
  // switch, only a clearly larger gain moves anything again.
  if (last_switch_ && now - *last_switch_ < kSettleTime) in.min_gain = kSettlingGain;
  std::vector<plan::SequenceProgress> progress;
  for (const LiveSequence& l : run.live_sequences()) {
    in.live_positions.push_back(l.position);
    progress.push_back({l.position, 0, l.remaining});
  }
  // remaining_tokens counts from `generated` to n_predict: LiveSequence.remaining is that already.
  in.remaining_tokens = plan::remaining_tokens(progress, setup_.n_ctx, in.plan.objective);
  auto decision = plan::decide_rebalance(setup_.graph, in);
  if (!decision.ok()) {
    report(run, fmt::format("rebalance: cannot re-plan: {}", decision.error()));
    next_decision_ = now + std::chrono::seconds(5);
    return;
  }
  if (!decision->switch_now) {
    gain_seen_at_.reset();
    return;
  }
  // A switch is wanted: only once it has been for a while, so that a passing disturbance (one
  // device's probe or steps slowed by something else for a moment) moves nothing.
  if (!gain_seen_at_) gain_seen_at_ = run.seconds_since_start(now);
  if (run.seconds_since_start(now) - *gain_seen_at_ < kPersistSeconds) return;
  if (std::string crowded = too_full_while_switching(decision->target); !crowded.empty()) {
    report(run, fmt::format("rebalance: {} would help ({:.0f}% less per token) but {}; not now",
                            decision->summary, decision->gain * 100, crowded));
    next_decision_ = now + kSettleTime;
    return;
  }
  RebalanceEvent event;
  event.detected_seconds = *gain_seen_at_;
  event.decided_seconds = run.seconds_since_start(now);
  event.predicted_gain = decision->gain;
  event.kv_bytes = 0;
  event.why = decision->reason;
  gain_seen_at_.reset();
  begin(run, decision->target, std::move(event));
}

void Rebalancer::tick(GenerationRun& run) {
  const Clock::time_point now = run.now();
  if (phase_ == Phase::Idle) try_rejoin(run);
  if (phase_ == Phase::Idle) {
    if (next_forced_ < options_.forced.size() && tokens_seen_ >= options_.forced[next_forced_].after_tokens &&
        !gives_units_to_lost(options_.forced[next_forced_].ranges)) {
      const BalanceOptions::Forced& f = options_.forced[next_forced_++];
      RebalanceEvent event;
      event.detected_seconds = event.decided_seconds = run.seconds_since_start(now);
      event.why = fmt::format("forced after {} tokens", f.after_tokens);
      begin(run, f.ranges, std::move(event));
    } else if (options_.enabled && setup_.planning && now >= next_decision_) {
      if (std::any_of(baseline_probes_.begin(), baseline_probes_.end(), [](int n) { return n < kBaselineProbes; })) {
        probe_idle(run, /*all=*/true);
      }
      next_decision_ = now + options_.decide_every;
      decide(run);
    }
    return;
  }
  if (phase_ != Phase::Idle && now >= attempt_->deadline) {
    std::string names;
    for (size_t w : attempt_->waiting) names += (names.empty() ? "" : ", ") + setup_.names[w];
    give_up(run, fmt::format("no answer within the deadline from {}", names.empty() ? "the workers" : names));
  }
}

// A forced move that gives units to a lost worker waits until it has rejoined.
bool Rebalancer::gives_units_to_lost(const std::vector<model::UnitRange>& after) const {
  for (size_t w = 0; w < after.size() && w < lost_.size(); ++w) {
    if (lost_[w] && !after[w].empty()) return true;
  }
  return false;
}

Clock::time_point Rebalancer::next_wakeup(Clock::time_point now) const {
  if (phase_ == Phase::Idle) {
    Clock::time_point next = now + options_.decide_every;
    for (size_t w = 0; w < lost_.size(); ++w) {
      if (lost_[w]) next = std::min(next, std::max(now, rejoin_[w].next_try));
    }
    return next;
  }
  return std::min(now + std::chrono::milliseconds(50), attempt_->deadline);
}

void Rebalancer::begin(GenerationRun& run, std::vector<model::UnitRange> after, RebalanceEvent event) {
  event.before = ranges_;
  event.after = after;
  event.summary = plan::summarize_moves(setup_.graph, setup_.names, ranges_, after);
  event.weight_bytes = 0;
  for (const Move& m : moves(after)) {
    for (int64_t u = m.units.begin; u < m.units.end; ++u) event.weight_bytes += setup_.graph.units[u].weight_bytes;
  }
  attempt_ = Attempt{};  // not emplace(): clang 14 sees no default constructor for a nested struct with member initializers
  attempt_->after = std::move(after);
  attempt_->event = std::move(event);
  attempt_->deadline = run.now() + options_.prepare_timeout;
  phase_ = Phase::Preparing;
  report(run, fmt::format("rebalance: {} ({}); preparing", attempt_->event.summary, attempt_->event.why));
  send_reshapes(run);
}

// Reshape { session, model_path | shard_hash, unit range, n_ctx, next hop, allow_keys = the
// upstream worker and the workers that send it units } -> every worker of the old or new pipeline.
void Rebalancer::send_reshapes(GenerationRun& run) {
  const std::vector<model::UnitRange>& after = attempt_->after;
  std::vector<size_t> next_stage(after.size(), after.size()), previous_stage(after.size(), after.size());
  size_t previous = after.size();
  for (size_t w = 0; w < after.size(); ++w) {
    if (after[w].empty()) continue;
    if (previous != after.size()) {
      next_stage[previous] = w;
      previous_stage[w] = previous;
    }
    previous = w;
  }
  const std::vector<Move> moved = moves(after);
  // From the last worker back to the first, so that each allows its upstream peer before that
  // peer connects to it.
  for (size_t w = after.size(); w-- > 0;) {
    if (lost_[w] || (after[w].empty() && ranges_[w].empty())) continue;
    wire::Envelope e;
    wire::Reshape* r = e.mutable_reshape();
    r->set_session(setup_.session);
    std::optional<BalancerSetup::ShardFile> upload;
    if (!after[w].empty()) {
      if (setup_.write_shard) {
        auto shard = setup_.write_shard(after[w]);
        if (!shard.ok()) return give_up(run, fmt::format("a shard for {}: {}", setup_.names[w], shard.error()));
        r->set_shard_hash(shard->hash);
        if (setup_.cached_shards(w).count(shard->hash) == 0) upload = std::move(shard).value();
      } else {
        r->set_model_path(setup_.model_path);
      }
    }
    r->set_unit_begin(static_cast<uint32_t>(after[w].begin));
    r->set_unit_end(static_cast<uint32_t>(after[w].end));
    r->set_n_ctx(static_cast<uint32_t>(setup_.n_ctx));
    r->set_send_type(setup_.send_type);
    r->set_cache_type_k(model::kv_type_name(setup_.kv_types.k));
    r->set_cache_type_v(model::kv_type_name(setup_.kv_types.v));
    if (next_stage[w] != after.size()) {
      r->set_next_endpoint(setup_.workers[next_stage[w]].endpoint);
      r->set_next_public_key(setup_.workers[next_stage[w]].public_key);
    }
    if (!setup_.insecure) {
      std::set<size_t> allowed;
      if (previous_stage[w] != after.size()) allowed.insert(previous_stage[w]);
      for (const Move& m : moved) {
        if (m.to == w && !attempt_->recovery) allowed.insert(m.from);
      }
      for (size_t a : allowed) r->add_allow_keys(setup_.workers[a].public_key);
    }
    attempt_->waiting.insert(w);
    if (upload) {
      auto file = MappedFile::open(upload->path);
      if (!file.ok()) return give_up(run, file.error());
      attempt_->uploads.push_back({w, upload->path, upload->hash, std::move(file).value(), 0, 0, std::move(e)});
      continue;
    }
    if (Status st = send(run, w, e); !st.ok()) return give_up(run, fmt::format("{}: {}", setup_.names[w], st.message()));
  }
  pump_uploads(run);
}

// ShardData { shard_hash, total_bytes, offset, chunk_bytes } + [chunk] -> worker, at most
// kShardWindow chunks ahead of its acknowledgements (ShardData { offset = received }).
void Rebalancer::pump_uploads(GenerationRun& run) {
  constexpr uint64_t kChunk = uint64_t{4} << 20;
  constexpr uint64_t kWindow = 4;
  for (Upload& u : attempt_->uploads) {
    const uint64_t total = u.file->size();
    while (u.sent < total && u.sent < u.acked + kWindow * kChunk) {
      const uint64_t n = std::min(kChunk, total - u.sent);
      wire::Envelope e;
      wire::ShardData* d = e.mutable_shard_data();
      d->set_shard_hash(u.hash);
      d->set_total_bytes(total);
      d->set_offset(u.sent);
      d->set_chunk_bytes(n);
      std::vector<zmq::message_t> frames;
      frames.emplace_back(u.file->data() + u.sent, n);
      e.set_request_id(run.next_request_id());
      attempt_->request_worker[e.request_id()] = u.worker;
      if (Status st = run.links().send(u.worker, e, std::move(frames)); !st.ok()) {
        return give_up(run, fmt::format("streaming a shard to {}: {}", setup_.names[u.worker], st.message()));
      }
      u.sent += n;
    }
  }
}

bool Rebalancer::take_shard_ack(GenerationRun& run, size_t worker, const wire::Envelope& e) {
  for (auto it = attempt_->uploads.begin(); it != attempt_->uploads.end(); ++it) {
    if (it->worker != worker || it->hash != e.shard_data().shard_hash()) continue;
    it->acked = e.shard_data().offset();
    if (it->acked < it->file->size()) {
      pump_uploads(run);
      return true;
    }
    setup_.cached_shards(worker).insert(it->hash);
    std::error_code ec;
    std::filesystem::remove(it->path, ec);  // the worker keeps it in its cache; this copy was only the source
    wire::Envelope reshape = std::move(it->reshape);
    attempt_->uploads.erase(it);
    if (Status st = send(run, worker, reshape); !st.ok()) give_up(run, fmt::format("{}: {}", setup_.names[worker], st.message()));
    return true;
  }
  return true;
}

void Rebalancer::drained(GenerationRun& run) {
  if (phase_ != Phase::Holding) return;
  attempt_->deadline = run.now() + options_.switch_timeout;
  send_kv(run);
}

// SendKv { session, units, to_endpoint, to_public_key } -> the worker that gives the units away.
void Rebalancer::send_kv(GenerationRun& run) {
  phase_ = Phase::Moving;
  attempt_->waiting.clear();
  attempt_->kv_expected = 0;
  for (const Move& m : moves(attempt_->after)) {
    if (m.from == ranges_.size() || m.to == ranges_.size()) continue;
    wire::Envelope e;
    wire::SendKv* k = e.mutable_send_kv();
    k->set_session(setup_.session);
    k->set_unit_begin(static_cast<uint32_t>(m.units.begin));
    k->set_unit_end(static_cast<uint32_t>(m.units.end));
    k->set_to_endpoint(setup_.workers[m.to].endpoint);
    k->set_to_public_key(setup_.workers[m.to].public_key);
    if (Status st = send(run, m.from, e); !st.ok()) {
      return give_up(run, fmt::format("{}: {}", setup_.names[m.from], st.message()));
    }
    attempt_->waiting.insert(m.to);
    attempt_->kv_expected++;
  }
  if (attempt_->kv_expected == 0) send_switch(run, false);
}

// SwitchSegment { session, abort } -> every worker of the old or new pipeline.
void Rebalancer::send_switch(GenerationRun& run, bool abort) {
  phase_ = abort ? Phase::Aborting : Phase::Switching;
  attempt_->waiting.clear();
  for (size_t w = 0; w < ranges_.size(); ++w) {
    if (attempt_->after[w].empty() && ranges_[w].empty()) continue;
    if (lost_[w] || run.links().disconnected(w)) continue;
    wire::Envelope e;
    e.mutable_switch_segment()->set_session(setup_.session);
    e.mutable_switch_segment()->set_abort(abort);
    if (Status st = send(run, w, e); !st.ok()) {
      if (!abort) return give_up(run, fmt::format("{}: {}", setup_.names[w], st.message()));
      continue;
    }
    attempt_->waiting.insert(w);
  }
  if (attempt_->waiting.empty()) abort ? (void)(phase_ = Phase::Idle, attempt_.reset()) : complete(run);
}

void Rebalancer::give_up(GenerationRun& run, const std::string& why) {
  if (!attempt_ || phase_ == Phase::Aborting) return;
  if (attempt_->recovery) {
    RecoveryEvent event = std::move(attempt_->recovered);
    attempt_->recovery = false;
    attempt_->deadline = run.now() + options_.switch_timeout;
    send_switch(run, /*abort=*/true);
    return fail_recovery(run, std::move(event), why);
  }
  if (phase_ == Phase::Switching) {
    // Some workers may run the new segments already: the pipeline is no longer whole.
    report(run, fmt::format("rebalance: {} failed while switching: {}", attempt_->event.summary, why));
  }
  const bool was_switching = phase_ == Phase::Switching;
  abandon(run, why);
  if (was_switching) run.fail_all(fmt::format("rebalancing failed while switching: {}", why));
}

void Rebalancer::abandon(GenerationRun& run, const std::string& why) {
  RebalanceEvent event = attempt_->event;
  event.aborted = true;
  event.why = why;
  event.switched_seconds = run.seconds_since_start(run.now());
  events_.push_back(event);
  if (trace_ != nullptr) trace_->rebalances.push_back(event);
  report(run, fmt::format("rebalance: {} given up: {}", event.summary, why));
  attempt_->deadline = run.now() + options_.switch_timeout;
  send_switch(run, /*abort=*/true);
}

void Rebalancer::complete(GenerationRun& run) {
  const Clock::time_point now = run.now();
  ranges_ = attempt_->after;
  run.set_stages(stages());
  update_expected();
  monitor_.reset_all();
  next_probe_ = now;
  last_switch_ = now;
  if (attempt_->recovery) {
    RecoveryEvent event = std::move(attempt_->recovered);
    attempt_.reset();
    phase_ = Phase::Idle;
    event.sequences = run.live_sequences().size();
    event.replayed_tokens = run.replay();
    report(run, fmt::format("recovery: {}; replaying {} tokens of {} sequence(s)", event.summary, event.replayed_tokens,
                            event.sequences));
    awaiting_resume_ = event.sequences > 0;
    record(std::move(event));
    return;
  }
  RebalanceEvent event = std::move(attempt_->event);
  event.switched_seconds = run.seconds_since_start(now);
  event.stall_seconds = seconds(now - attempt_->held_at);
  events_.push_back(event);
  if (trace_ != nullptr) trace_->rebalances.push_back(event);
  report(run, fmt::format("rebalance: {} switched at {:.2f} s; {:.1f} KiB of KV moved; stall {:.0f} ms", event.summary,
                     event.switched_seconds, event.kv_bytes / 1024.0, event.stall_seconds * 1000));
  attempt_.reset();
  phase_ = Phase::Idle;
}

bool Rebalancer::take_message(GenerationRun& run, size_t worker, const wire::Envelope& e) {
  last_heard_[worker] = run.now();
  if (rejoin_[worker].hello_id != 0 && e.request_id() == rejoin_[worker].hello_id) {
    if (e.has_hello_reply()) take_rejoin(run, worker);
    return true;
  }
  if (rejoin_requests_.erase(e.request_id()) != 0) return true;  // EndSession's echo (or "no such session")
  if (auto probe = probes_.find(e.request_id()); probe != probes_.end() && probe->second == worker) {
    probes_.erase(probe);
    if (!e.has_speed_probe_reply() || !(e.speed_probe_reply().seconds() > 0)) return true;
    const double seconds = e.speed_probe_reply().seconds();
    if (baseline_probes_[worker] < kBaselineProbes) {
      // The fastest of the first few: a probe that ran beside another worker's step is slower.
      probe_baseline_[worker] = baseline_probes_[worker]++ == 0 ? seconds : std::min(probe_baseline_[worker], seconds);
    } else if (judged_by_probe(worker)) {
      // Never faster than its baseline: a probe that ran in a quiet moment must not lure work
      // onto an idle device; one that recovered from a slowdown reads 1 again.
      monitor_.set_idle_probe(worker, std::max(1.0, seconds / probe_baseline_[worker]));
    }
    return true;
  }
  if (!attempt_) return false;
  const bool ours = attempt_->request_worker.count(e.request_id()) != 0;
  if (e.has_error()) {
    if (!ours) return false;
    give_up(run, e.error().message());
    return true;
  }
  switch (e.body_case()) {
    case wire::Envelope::kShardData:
      return phase_ == Phase::Preparing ? take_shard_ack(run, worker, e) : true;
    case wire::Envelope::kReshapeReply:
      if (phase_ != Phase::Preparing || !ours || e.reshape_reply().session() != setup_.session) return true;
      attempt_->waiting.erase(worker);
      if (attempt_->waiting.empty() && attempt_->recovery) {
        attempt_->recovered.loaded_seconds = run.seconds_since_start(run.now());
        report(run, fmt::format("recovery: loaded in {:.2f} s", attempt_->recovered.loaded_seconds -
                                                                   attempt_->recovered.planned_seconds));
        send_switch(run, false);
      } else if (attempt_->waiting.empty()) {
        phase_ = Phase::Holding;
        attempt_->held_at = run.now();
        report(run, fmt::format("rebalance: {} prepared in {:.2f} s; holding the next steps", attempt_->event.summary,
                           run.seconds_since_start(run.now()) - attempt_->event.decided_seconds));
      }
      return true;
    case wire::Envelope::kKvReceived:
      if (phase_ != Phase::Moving || e.kv_received().session() != setup_.session) return true;
      attempt_->event.kv_bytes += e.kv_received().bytes();
      if (attempt_->kv_expected > 0 && --attempt_->kv_expected == 0) send_switch(run, false);
      return true;
    case wire::Envelope::kSwitchReply:
      if (!ours || e.switch_reply().session() != setup_.session) return true;
      attempt_->waiting.erase(worker);
      if (attempt_->waiting.empty()) {
        if (phase_ == Phase::Switching) {
          complete(run);
        } else {
          attempt_.reset();
          phase_ = Phase::Idle;
        }
      }
      return true;
    default: return false;
  }
}

void Rebalancer::lost(GenerationRun& run, size_t worker) {
  if (!lost_[worker]) {
    lost_[worker] = true;
    rejoin_[worker] = Rejoin{.next_try = run.now() + options_.rejoin_every, .hello_id = 0};
    if (!ranges_[worker].empty() || !attempt_) {
      report(run, fmt::format("{} was lost ({}); it holds nothing", setup_.names[worker],
                              run.links().disconnect_reason(worker)));
    }
  }
  if (!attempt_) return;
  if (attempt_->recovery) {
    // A survivor the recovery counted on: plan again without it.
    if (attempt_->after[worker].empty()) return;
    RecoveryEvent event = std::move(attempt_->recovered);
    event.why += fmt::format("; then {} was lost too: {}", setup_.names[worker], run.links().disconnect_reason(worker));
    attempt_.reset();
    phase_ = Phase::Idle;
    return begin_recovery(run, std::move(event));
  }
  if (attempt_->after[worker].empty() && ranges_[worker].empty()) return;
  if (phase_ == Phase::Aborting) {
    attempt_->waiting.erase(worker);
    if (attempt_->waiting.empty()) {
      attempt_.reset();
      phase_ = Phase::Idle;
    }
    return;
  }
  give_up(run, fmt::format("{} was lost: {}", setup_.names[worker], run.links().disconnect_reason(worker)));
}

// The workers' SwitchReply echoes are awaited here, so that none is left for whoever reads the
// links next.
void Rebalancer::end_run(GenerationRun& run) {
  if (!attempt_) return;
  if (phase_ != Phase::Aborting) give_up(run, "the generation ended first");
  while (attempt_ && run.now() < attempt_->deadline) {
    for (size_t w : run.links().poll(std::chrono::milliseconds(50))) {
      for (auto r = run.links().receive(w); r.ok() && r.value(); r = run.links().receive(w)) {
        take_message(run, w, r.value()->envelope());
      }
    }
    for (size_t w = 0; w < ranges_.size() && attempt_; ++w) {
      if (run.links().disconnected(w)) lost(run, w);
    }
  }
  attempt_.reset();
  phase_ = Phase::Idle;
}

bool Rebalancer::recover(GenerationRun& run, size_t worker) {
  if (!options_.recover) return false;
  const Clock::time_point now = run.now();
  const std::string why = run.links().disconnect_reason(worker);
  lost_[worker] = true;
  rejoin_[worker] = Rejoin{.next_try = now + options_.rejoin_every, .hello_id = 0};
  RecoveryEvent event;
  if (attempt_ && attempt_->recovery) {
    // Lost while recovering from an earlier loss: one recovery, planned again.
    event = std::move(attempt_->recovered);
    event.why += fmt::format("; then {} was lost too: {}", setup_.names[worker], why);
    send_switch(run, /*abort=*/true);
  } else {
    if (attempt_) abandon(run, fmt::format("{} was lost: {}", setup_.names[worker], why));
    event.worker = worker;
    event.why = why;
    event.before = ranges_;
    event.detected_seconds = run.seconds_since_start(now);
    event.last_heard_seconds = last_heard_[worker] ? run.seconds_since_start(*last_heard_[worker]) : 0;
  }
  attempt_.reset();
  phase_ = Phase::Idle;
  report(run, fmt::format("recovery: {} was lost ({}; last heard {:.2f} s before); re-planning over the survivors",
                          setup_.names[worker], why, event.detected_seconds - event.last_heard_seconds));
  begin_recovery(run, std::move(event));
  return true;
}

Result<std::vector<model::UnitRange>> Rebalancer::plan_survivors(GenerationRun& run) const {
  std::vector<size_t> survivors;
  for (size_t w = 0; w < lost_.size(); ++w) {
    if (!lost_[w]) survivors.push_back(w);
  }
  if (survivors.empty()) return Status::Error("no worker is left");
  if (!setup_.planning) {
    // Without profiles, as a plan without them: layers split evenly, in ring order.
    LL_ASSIGN_OR_RETURN(auto split, plan_segments(setup_.graph, survivors.size(), ""));
    std::vector<model::UnitRange> out(lost_.size());
    for (size_t k = 0; k < survivors.size(); ++k) out[survivors[k]] = split[k];
    return out;
  }
  // The speeds last observed where known, else as profiled.
  const auto slowdowns = monitor_.slowdowns(monitor_time(run.now()));
  const plan::RebalanceInput in = planning_input(slowdowns ? *slowdowns : std::vector<double>(lost_.size(), 1.0));
  LL_ASSIGN_OR_RETURN(plan::RebalanceDecision decision, plan::decide_rebalance(setup_.graph, in));
  return decision.target;
}

void Rebalancer::begin_recovery(GenerationRun& run, RecoveryEvent event) {
  std::string survivors;
  for (size_t w = 0; w < lost_.size(); ++w) {
    if (!lost_[w]) survivors += (survivors.empty() ? "" : ", ") + setup_.names[w];
  }
  auto target = plan_survivors(run);
  if (!target.ok()) {
    return fail_recovery(run, std::move(event),
                         fmt::format("the surviving workers ({}) cannot hold the model: {}",
                                     survivors.empty() ? "none" : survivors, target.error()));
  }
  event.planned_seconds = run.seconds_since_start(run.now());
  event.after = *target;
  event.summary = plan::summarize_moves(setup_.graph, setup_.names, event.before, event.after);
  // What the lost workers held is gone.
  for (size_t w = 0; w < lost_.size(); ++w) {
    if (lost_[w]) ranges_[w] = {};
  }
  attempt_ = Attempt{};
  attempt_->after = std::move(target).value();
  attempt_->recovery = true;
  attempt_->recovered = std::move(event);
  attempt_->deadline = run.now() + options_.prepare_timeout;
  attempt_->held_at = run.now();
  phase_ = Phase::Preparing;
  report(run, fmt::format("recovery: re-planned over {} in {:.3f} s: {}; loading", survivors,
                          attempt_->recovered.planned_seconds - attempt_->recovered.detected_seconds,
                          attempt_->recovered.summary));
  send_reshapes(run);
}

void Rebalancer::fail_recovery(GenerationRun& run, RecoveryEvent event, const std::string& why) {
  event.failed = true;
  event.error = why;
  const std::string message = fmt::format("{} was lost and the run cannot go on: {}", setup_.names[event.worker], why);
  report(run, fmt::format("recovery failed: {}", why));
  record(std::move(event));
  run.fail_all(message);
}

void Rebalancer::record(RecoveryEvent event) {
  if (trace_ != nullptr) trace_->recoveries.push_back(std::move(event));
}

void Rebalancer::replayed(GenerationRun& run, uint64_t /*sequence*/) {
  for (size_t w : run.stages()) last_heard_[w] = run.now();
  if (!awaiting_resume_ || trace_ == nullptr || trace_->recoveries.empty()) return;
  awaiting_resume_ = false;
  RecoveryEvent& e = trace_->recoveries.back();
  e.resumed_seconds = run.seconds_since_start(run.now());
  report(run, fmt::format("recovery: resumed {:.2f} s after the last message from {}: detect {:.2f} s, re-plan {:.3f} s, "
                          "load {:.2f} s, replay {:.2f} s",
                          e.resumed_seconds - e.last_heard_seconds, setup_.names[e.worker],
                          e.detected_seconds - e.last_heard_seconds, e.planned_seconds - e.detected_seconds,
                          e.loaded_seconds - e.planned_seconds, e.resumed_seconds - e.loaded_seconds));
}

// Hello -> each lost worker, over a new link, every rejoin_every until one answers.
void Rebalancer::try_rejoin(GenerationRun& run) {
  const Clock::time_point now = run.now();
  for (size_t w = 0; w < lost_.size(); ++w) {
    if (!lost_[w] || now < rejoin_[w].next_try) continue;
    rejoin_[w].next_try = now + options_.rejoin_every;
    rejoin_[w].hello_id = 0;
    if (!run.links().reconnect(w).ok()) continue;
    wire::Envelope e;
    e.set_request_id(run.next_request_id());
    e.mutable_hello()->set_client("lingualinked head (rejoin)");
    if (run.links().send(w, e).ok()) rejoin_[w].hello_id = e.request_id();
  }
}

// EndSession { session } -> the worker that answered: whatever it kept of the session is stale.
void Rebalancer::take_rejoin(GenerationRun& run, size_t worker) {
  lost_[worker] = false;
  rejoin_[worker] = Rejoin{};
  wire::Envelope e;
  e.set_request_id(run.next_request_id());
  e.mutable_end_session()->set_session(setup_.session);
  if (run.links().send(worker, e).ok()) rejoin_requests_.insert(e.request_id());
  baseline_probes_[worker] = 0;  // a restarted device is measured afresh
  monitor_.reset(worker);
  const double t = run.seconds_since_start(run.now());
  if (trace_ != nullptr) trace_->rejoins.push_back({worker, t});
  report(run, fmt::format("{} is back: it holds nothing until the balancer gives it units", setup_.names[worker]));
}

}  // namespace ll::cluster
