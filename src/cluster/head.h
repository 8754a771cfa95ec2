#pragma once
// The head (coordinator): connects to the workers with pinned keys, assigns each a segment of
// the model, then drives generations through the pipeline. It tokenizes, sends one Step per
// prompt and per generated token to the first worker, and gets back only token ids from the
// last one (which samples with the settings that travel with the request). Many sequences are
// in flight at once, so while one worker computes sequence A the next computes sequence B.
//
// Failures are values: a worker that disconnects, stops answering (no reply within a deadline
// derived from the measured step time) or sends something wrong ends the affected requests
// with an error naming it; generate() always returns. Each generate() is a GenerationRun.
// Threading: not thread-safe; one thread at a time calls a Head (its sockets are ZeroMQ's).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cluster/client_links.h"
#include "cluster/generation_run.h"
#include "cluster/rebalancer.h"
#include "cluster/run_trace.h"
#include "cluster/worker_address.h"
#include "core/placement.h"
#include "core/progress.h"
#include "core/status.h"
#include "model/model.h"
#include "model/units.h"
#include "net/transport.h"
#include "profile/device_profile.h"
#include "text/sampler.h"
#include "text/tokenizer.h"

namespace ll::cluster {

struct HeadOptions {
  std::vector<WorkerAddress> workers;  // pipeline order
  net::KeyPair keys;                   // the head's identity, in every worker's allow-list
  bool insecure = false;               // loopback only
  std::chrono::milliseconds hello_timeout{5000};
  std::chrono::milliseconds min_step_timeout{3000};  // a step's deadline is never shorter
  const std::atomic<bool>* cancel = nullptr;        // set (e.g. by a signal handler) to stop
};

struct WorkerInfo {
  WorkerAddress address;
  std::string name;
  uint32_t threads = 0;
  std::string simd_target;
  uint64_t memory_limit = 0;
  std::set<std::string> cached_shards;
  std::chrono::milliseconds session_lease{0};  // the worker frees a session silent this long (0: not said)
  Placement placement;  // where it computes; its parts are empty when not said
};

struct SegmentLoadOptions {
  int64_t n_ctx = 2048;
  model::KvTypes kv_types;
  // Stream each segment as a shard into the workers' caches instead of letting them open the
  // model path themselves. The shards are written (graph::write_shards) to `shard_dir`
  // (default: a temporary directory) and removed once sent.
  bool send_shards = false;
  std::string shard_dir;
  // How the stages send hidden states to each other (--wire-type): F32 as computed, or F16/BF16
  // at half the bytes for slow links, which changes the numerics.
  wire::ActivationType wire_type = wire::ACTIVATION_F32;
  // Shards crossing the network (bytes) and workers done loading their segments.
  ProgressSink progress;
};

struct ProfileOptions {
  int repetitions = 3;
  int64_t decode_context = 128;
  int64_t prompt_chunk = 32;
  model::KvTypes kv_types = {};  // the KV cache's types the run will use
  bool refresh = false;  // measure again even where a worker has a profile for these settings
  std::chrono::milliseconds timeout{180000};  // per worker: loading, timing and probing its links
  ProgressSink progress = {};  // workers profiled
};

class Head {
 public:
  // Connects and says hello to every worker.
  static Result<std::unique_ptr<Head>> connect(HeadOptions options);
  ~Head();  // ends its session on the workers, so that it and its peers' rights do not linger

  const std::vector<WorkerInfo>& workers() const { return workers_; }
  // Asks every worker for its device profile for the model at `model_path` (a path the workers
  // can open), in rounds of workers that do not compete (core/placement.h) so that no timing
  // disturbs another, then for its links to every other worker.
  // Device names are the workers' names, made unique with their endpoints.
  Result<profile::ClusterProfile> profile(const std::string& model_path, const ProfileOptions& options,
                                       const std::function<void(const std::string&)>& progress = {});
  // How the next generate() calls balance. Without `planning` (the profiles the plan was made
  // from) only forced moves happen.
  void set_balancing(BalanceOptions options, std::optional<BalancePlanning> planning);
  // Assigns segments[i] to worker i and waits until every worker has loaded it; a worker with an
  // empty segment holds nothing (the balancer may give it units later). `model` is the head's
  // view of the same file (for the tokenizer and, with send_shards, the shards); it must outlive
  // the head when shards are sent.
  Status load(const std::string& model_path, const model::Model& model, const std::vector<model::UnitRange>& segments,
              const SegmentLoadOptions& options);
  // What each worker holds now (the balancer changes it while generating).
  const std::vector<model::UnitRange>& segments() const;
  // Runs the requests concurrently, one sequence each; on_text(i, text) streams request i.
  std::vector<Generation> generate(const std::vector<Request>& requests, const GenerationRun::OnText& on_text);
  // A run without requests yet, that requests join while it runs (GenerationRun::admit, cancel,
  // release): turn() it while it is active() or requests may come, then close_run() it. The
  // balancer, recovery, keep-alive and deadlines work as in generate(). With trace_tokens its
  // decode tokens go into trace() as generate()'s do; it may run for days, so whoever reads them
  // then calls forget_traced_tokens(). Nothing else may use the head until close_run().
  std::unique_ptr<GenerationRun> open_run(GenerationRun::OnText on_text, bool trace_tokens = false);
  void close_run(GenerationRun& run);
  // Scores the sequences concurrently, one step each (Request.score): per sequence, the
  // log-probability of each next token (size - 1 values), or the error that ended it.
  std::vector<Result<std::vector<float>>> score(const std::vector<std::vector<int32_t>>& sequences);
  // Prompts (and replays) cross the pipeline in chunks of this many tokens; 0 (the default):
  // chosen per prompt from the profiles the plan was made from, or, without them, the whole
  // prompt in one step.
  void set_prompt_chunk(int64_t tokens) { prompt_chunk_ = tokens; }
  // The last generate()'s tokens, stage times and rebalances.
  const RunTrace& trace() const { return trace_; }
  // Drops the tokens trace() holds (an open run's, once they were read).
  void forget_traced_tokens() { trace_.tokens.clear(); }
  // Renews this head's session on every connected worker (KeepAlive, no reply), so that it
  // outlives the workers' session lease while the head is idle between generate() calls. Call it
  // at least every keep_alive_interval(); load() and profile() renew it themselves while they wait.
  // An error names the workers it could not reach.
  Status keep_alive();
  // A third of the shortest session lease the workers reported, at most a second.
  std::chrono::milliseconds keep_alive_interval() const;

 private:
  Head(HeadOptions options, std::vector<std::unique_ptr<net::Client>> clients);
  // A link to worker w, its key pinned.
  static Result<std::unique_ptr<net::Client>> connect_worker(const WorkerAddress& w, const HeadOptions& options);
  Status hello();
  void end_session();
  Status send_shard(size_t worker, const std::string& path, const std::string& hash, const std::string& what,
                    const ProgressSink& progress);
  Result<BalancerSetup::ShardFile> write_shard(model::UnitRange range);
  // Waits for one reply per listed worker, calling on_reply(worker, message); true to accept it.
  Status await_replies(std::vector<size_t> pending, std::chrono::milliseconds timeout, const char* what,
                       const std::function<Status(size_t, net::Message&)>& on_reply);
  std::string describe(size_t worker) const;
  bool cancelled() const { return options_.cancel != nullptr && options_.cancel->load(); }
  // A started run of `requests` under the balancer; `trace_tokens`: record every decode token.
  std::unique_ptr<GenerationRun> begin_run(std::vector<Request> requests, GenerationRun::OnText on_text,
                                           bool trace_tokens);

  HeadOptions options_;
  std::vector<std::unique_ptr<net::Client>> clients_;
  ClientLinks links_{clients_, [this](size_t i) { return connect_worker(options_.workers[i], options_); }};
  std::vector<WorkerInfo> workers_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  uint64_t session_ = 0;
  bool session_loaded_ = false;  // some worker may hold session_
  int64_t n_ctx_ = 0, n_embd_ = 0, n_vocab_ = 0;
  uint64_t hidden_value_bytes_ = sizeof(float);
  double flops_per_token_ = 0;
  RunCounters counters_;
  const model::Model* model_ = nullptr;
  std::string shard_dir_;  // where shards for the balancer's moves are written, with send_shards
  BalanceOptions balance_ = [] { BalanceOptions o; o.enabled = false; return o; }();
  std::optional<BalancePlanning> planning_;
  std::unique_ptr<Rebalancer> balancer_;
  RunTrace trace_;
  std::chrono::steady_clock::time_point last_keep_alive_{};
  int64_t prompt_chunk_ = 0;
};

}  // namespace ll::cluster
