#pragma once
// The runtime balancer: re-plans the pipeline while it generates (a RunController).
//
//   monitor  every decode token's stage timings -> SpeedMonitor: each worker's speed against its profile
//   decide   every `decide_every`: decide_rebalance() under the observed speeds, or a forced move
//   prepare  Reshape -> every worker of the old and the new pipeline; steps keep flowing meanwhile
//   hold     once every worker is ready the run holds new steps; when none is in flight (drained):
//   move     SendKv -> each worker that gives units away; KvReceived <- each worker that gains them
//   switch   SwitchSegment -> every worker; SwitchReply <- each; the run goes on over the new stages
//
// The KV caches move rather than being rebuilt by replaying the tokens: a boundary shift moves a
// few layers' caches (kilobytes to a few MB) over one link, while a replay would run every
// moved layer over every past position of every sequence on the device that was just found slow.
// Anything that fails before the switch (an error reply, a timeout, a worker lost) gives the
// attempt up (SwitchSegment{abort}) and generation goes on over the old pipeline.
//
// Recovery from a lost worker of the pipeline uses the same steps without the caches:
//   detect   the run finds its link lost (closed, or silent past the heartbeat timeout) and calls recover()
//   re-plan  decide_rebalance over the connected workers (or an even split without profiles)
//   load     Reshape -> every survivor, ReshapeReply <- each; SwitchSegment, SwitchReply <- each
//   replay   the run sends every live sequence's tokens so far as one step (GenerationRun::replay)
// Here the caches are rebuilt rather than moved: the lost worker took its share of them along.
// When no placement on the survivors holds the model the run's sequences end with an error
// saying so (their text so far is kept). A lost worker is reconnected every `rejoin_every`; once
// it answers a Hello its stale session is ended and it counts as a worker that holds nothing,
// which the balancer may give units by its usual rule.
// Threading: used by the thread that drives the head; not thread-safe.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/generation_run.h"
#include "cluster/worker_address.h"
#include "core/mapped_file.h"
#include "cluster/run_trace.h"
#include "cluster/speed_monitor.h"
#include "graph/graph.h"
#include "model/units.h"
#include "plan/cost_model.h"
#include "plan/planners.h"
#include "plan/rebalance.h"
#include "profile/device_profile.h"

namespace ll::cluster {

// How a head balances; `--balance on|off` and the tests' forced moves.
struct BalanceOptions {
  bool enabled = true;  // monitor and re-plan (needs the workers' profiles)
  // Switch to `ranges` (one per worker) once `after_tokens` decode tokens of this head's runs
  // have arrived (and every worker it gives units to is connected), whatever the monitor says.
  // For tests and demonstrations.
  struct Forced {
    uint64_t after_tokens = 0;
    std::vector<model::UnitRange> ranges;
  };
  std::vector<Forced> forced;
  std::chrono::milliseconds decide_every{250};
  std::chrono::milliseconds prepare_timeout{120000};  // loading or streaming the new segments
  std::chrono::milliseconds switch_timeout{10000};    // moving the caches and switching
  bool recover = true;  // carry on over the survivors when a worker of the pipeline is lost
  std::chrono::milliseconds rejoin_every{1000};       // how often a lost worker's link is tried again
  std::function<void(const std::string&)> report;     // one line per event as it happens, with the run's time
};

// The planner's inputs as the pipeline was planned: profiles of every worker (ring order) and
// their links, and the options the plan was made with.
struct BalancePlanning {
  profile::ClusterProfile profile;
  plan::CostOptions cost;
  plan::PlanOptions plan;
};

// What the balancer needs to know of the loaded pipeline.
struct BalancerSetup {
  uint64_t session = 0;
  std::vector<WorkerAddress> workers;  // every worker the head holds a link to, in ring order
  std::vector<std::string> names;      // short names for summaries ("a", "b")
  bool insecure = false;
  int64_t n_ctx = 0;
  wire::ActivationType send_type = wire::ACTIVATION_F32;  // of the hidden states between stages
  model::KvTypes kv_types;
  graph::Graph graph;
  // The source of a prepared segment: the model file (a path the workers open), or, when
  // `write_shard` is set, a shard of exactly that range, streamed into the worker's cache in the
  // background (while steps flow) unless `cached_shards` says it holds it already.
  std::string model_path;
  struct ShardFile {
    std::string path, hash;
  };
  std::function<Result<ShardFile>(model::UnitRange range)> write_shard;
  std::function<std::set<std::string>&(size_t worker)> cached_shards;  // kept up to date
  // What re-planning needs; without it only forced moves happen.
  std::optional<BalancePlanning> planning;
};

class Rebalancer final : public RunController {
 public:
  Rebalancer(BalancerSetup setup, BalanceOptions options, std::vector<model::UnitRange> ranges);

  // New options and planning inputs for the next runs (forced moves count tokens from then on).
  void configure(BalanceOptions options, std::optional<BalancePlanning> planning);
  bool active() const { return (options_.enabled && setup_.planning) || next_forced_ < options_.forced.size(); }
  // Whether a run should have this as its controller: it balances, or recovers from losses.
  bool controls() const { return active() || options_.recover; }
  const std::vector<model::UnitRange>& ranges() const { return ranges_; }
  // The workers that hold units, in ring order.
  std::vector<size_t> stages() const;
  const std::vector<RebalanceEvent>& events() const { return events_; }
  // Where this run records its rebalances (also kept in events()).
  void begin_run(RunTrace* trace) { trace_ = trace; }
  // Gives up an attempt the run left unfinished, so that no worker keeps a prepared segment.
  void end_run(GenerationRun& run);

  bool take_message(GenerationRun& run, size_t worker, const wire::Envelope& e) override;
  void on_token(GenerationRun& run, const wire::TokenResult& token) override;
  void tick(GenerationRun& run) override;
  bool holding() const override {
    return phase_ == Phase::Holding || phase_ == Phase::Moving || phase_ == Phase::Switching ||
           (attempt_ && attempt_->recovery);
  }
  void drained(GenerationRun& run) override;
  void lost(GenerationRun& run, size_t worker) override;
  bool recover(GenerationRun& run, size_t worker) override;
  void replayed(GenerationRun& run, uint64_t sequence) override;
  Clock::time_point next_wakeup(Clock::time_point now) const override;

 private:
  enum class Phase { Idle, Preparing, Holding, Moving, Switching, Aborting };
  // A shard streamed to a worker: ShardData chunks up to a window ahead of its acknowledgements.
  struct Upload {
    size_t worker = 0;
    std::string path, hash;
    std::unique_ptr<MappedFile> file;
    uint64_t sent = 0, acked = 0;
    wire::Envelope reshape;  // sent once the shard is in
  };
  struct Attempt {
    std::vector<Upload> uploads;
    std::vector<model::UnitRange> after;
    RebalanceEvent event;
    std::set<size_t> waiting;                   // workers whose reply the phase waits for
    std::map<uint64_t, size_t> request_worker;  // our requests, to match error replies
    size_t kv_expected = 0;
    Clock::time_point deadline;
    Clock::time_point held_at;  // the first step held back: the stall runs from here to the switch
    bool recovery = false;      // re-planned after a loss: no caches move, the run replays
    RecoveryEvent recovered;    // with recovery
  };
  // A lost worker's way back: a new link, a Hello, then EndSession of what it may still hold.
  struct Rejoin {
    Clock::time_point next_try{};
    uint64_t hello_id = 0;  // the Hello awaiting its reply
  };

  void begin(GenerationRun& run, std::vector<model::UnitRange> after, RebalanceEvent event);
  // Re-plans over the connected workers and prepares them; the run holds meanwhile.
  void begin_recovery(GenerationRun& run, RecoveryEvent event);
  Result<std::vector<model::UnitRange>> plan_survivors(GenerationRun& run) const;
  void fail_recovery(GenerationRun& run, RecoveryEvent event, const std::string& why);
  void record(RecoveryEvent event);
  // Lost workers: reconnect, Hello, and on its reply take it back (try_rejoin, take_rejoin).
  void try_rejoin(GenerationRun& run);
  bool gives_units_to_lost(const std::vector<model::UnitRange>& after) const;
  void take_rejoin(GenerationRun& run, size_t worker);

  // The policy's turn: probes for idle workers, then decide_rebalance under the observed speeds.
  void decide(GenerationRun& run);
  // decide_rebalance's input: the profiles under `slowdown`, the placement now, the lost workers.
  plan::RebalanceInput planning_input(std::vector<double> slowdown) const;
  void probe_idle(GenerationRun& run, bool all);
  void update_expected();
  // Why some worker could not hold its old and new segments at once, or empty.
  std::string too_full_while_switching(const std::vector<model::UnitRange>& after) const;
  // Holds nothing, or too little for its steps to show its speed.
  bool judged_by_probe(size_t w) const;
  double monitor_time(Clock::time_point t) const { return std::chrono::duration<double>(t - epoch_).count(); }
  void send_reshapes(GenerationRun& run);
  void pump_uploads(GenerationRun& run);
  bool take_shard_ack(GenerationRun& run, size_t worker, const wire::Envelope& e);
  void send_kv(GenerationRun& run);
  void send_switch(GenerationRun& run, bool abort);
  void give_up(GenerationRun& run, const std::string& why);
  // Records the attempt as given up and tells its workers to drop what they prepared.
  void abandon(GenerationRun& run, const std::string& why);
  void complete(GenerationRun& run);
  Status send(GenerationRun& run, size_t worker, wire::Envelope& e);
  void report(const GenerationRun& run, const std::string& line) const;
  // The moves of state between workers: (from, to, units) for every unit whose owner changes.
  struct Move {
    size_t from, to;
    model::UnitRange units;
  };
  std::vector<Move> moves(const std::vector<model::UnitRange>& after) const;

  BalancerSetup setup_;
  BalanceOptions options_;
  std::vector<model::UnitRange> ranges_;
  Phase phase_ = Phase::Idle;
  std::optional<Attempt> attempt_;
  std::vector<RebalanceEvent> events_;
  std::vector<bool> lost_;  // per worker: its link was lost and it has not rejoined
  std::vector<std::optional<Clock::time_point>> last_heard_;  // per worker: its last message
  std::vector<Rejoin> rejoin_;
  std::set<uint64_t> rejoin_requests_;  // EndSession sent to rejoining workers: their echoes are ours
  bool awaiting_resume_ = false;  // the last recovery's replay has not brought a token yet
  RunTrace* trace_ = nullptr;
  uint64_t tokens_seen_ = 0;
  size_t next_forced_ = 0;
  // The policy's state.
  const Clock::time_point epoch_ = Clock::now();
  SpeedMonitor monitor_;
  std::vector<double> expected_;  // per worker: its profile's time per token for what it holds (0: judged by probes)
  Clock::time_point next_decision_{};
  std::optional<Clock::time_point> last_switch_;
  std::optional<double> gain_seen_at_;  // when the current change was first seen (monitor time)
  // SpeedProbe: each worker's first answer is its speed as profiled; an idle worker's factor is
  // a later answer over that one.
  std::vector<double> probe_baseline_;
  std::vector<int> baseline_probes_;  // answers taken into the baseline so far
  std::map<uint64_t, size_t> probes_;  // outstanding, by request id
  Clock::time_point next_probe_{};
};

}  // namespace ll::cluster
