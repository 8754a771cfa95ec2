#pragma once
// One generation run: the requests a head drives through its pipeline at once, one sequence
// each. Its state is the table of sequences; each step of the protocol is a method, so that
// whatever watches the pipeline can hook into it:
//
//   start ─► send_step: Step ─► worker 0 ─► … ─► last worker: TokenResult ─► take_token ─► send_step …
//   a step past its deadline ─► probe: Hello ─► every worker ─► end_probe: the silent are blamed
//
// A RunController (the balancer) may change the pipeline while it runs: it sees every message
// and every token first, may hold the next steps back until no step is in flight (a token
// boundary for all sequences at once), and then changes which workers form the pipeline.
//
// Failures are values: a worker of the pipeline that disconnects is handed to the controller,
// which may recover from the loss (recover()); then the steps in flight are abandoned, every
// live sequence continues under a new sequence id (whatever the old ids still bring is
// ignored), and once the controller has a new pipeline, replay() sends each sequence's tokens so
// far as one step from position 0. Without a controller that recovers, the loss ends every
// sequence with an error naming the worker. A worker that stops answering (no reply within a
// deadline derived from the measured step time) or sends something wrong ends the affected
// sequences with an error; run() always returns. A worker outside the pipeline that is lost
// concerns only the controller.
//
// A run may stay open (a server): between turns, admit() adds a request, which starts at once
// alongside the others (or once the controller stops holding), and cancel() ends one request
// alone, its sequence freed on every worker at once. Once a request has ended, release() hands
// over its Generation and its index may be given to a later request.
// Threading: not thread-safe; one thread drives a run. The links, the tokenizer and the
// counters must outlive it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/pipeline_links.h"
#include "cluster/run_trace.h"
#include "core/status.h"
#include "plan/prompt_chunk.h"
#include "text/sampler.h"
#include "text/tokenizer.h"
#include "wire.pb.h"

namespace ll::cluster {

struct Request {
  std::string prompt;
  std::vector<int32_t> prompt_tokens;  // used instead of `prompt` when not empty
  int64_t n_predict = 128;  // as in exec::GenerateOptions: -1 and -2 = until EOS or a full context
  bool ignore_eos = false;  // benchmarks: always generate n_predict tokens
  text::SamplerParams sampling;
  // Score the prompt instead of generating (Step.score): one step of all its tokens (at least 2,
  // at most the context), answered by Generation.log_probs; n_predict and sampling are unused.
  bool score = false;
};

// `k` requests for the same prompt whose samplers are seeded sampling.seed, sampling.seed + 1, ...
// so that sampled sequences differ and each can be reproduced alone.
std::vector<Request> parallel_requests(const std::string& prompt, int64_t n_predict,
                                       const text::SamplerParams& sampling, size_t k);

struct StageStats {
  uint64_t steps = 0;
  uint64_t compute_us = 0, queue_us = 0, send_us = 0;
};

struct Generation {
  Status status;
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated
  std::vector<float> log_probs;  // a scored request's: of each next prompt token (prompt size - 1 values)
  std::string text;
  double prompt_seconds = 0;    // until the first token came back
  int64_t prompt_chunk = 0;     // tokens per chunk its prompt crossed the pipeline in (the last may be fewer)
  double generate_seconds = 0;  // from then to the last token
  std::vector<double> token_seconds;  // when each generated token arrived, seconds after generate() began
  std::vector<StageStats> stages;  // per worker, decode steps only
  uint64_t decode_steps = 0;
  uint64_t round_trip_us = 0;  // decode steps, head to head
  uint64_t wire_bytes = 0;     // decode steps: payload bytes over every link
};

// The pipeline a run drives, as the head loaded it.
struct PipelineShape {
  uint64_t session = 0;
  int64_t n_ctx = 0, n_embd = 0, n_vocab = 0;
  uint64_t hidden_value_bytes = sizeof(float);  // on the links between stages (--wire-type)
  double flops_per_token = 0;             // the whole model's; sets deadlines until a step was measured
  std::vector<std::string> worker_names;  // one per link, for messages: "worker 1 'a' (tcp://...)"
  std::vector<size_t> stages;             // the links that form the pipeline, in order; empty: all
  std::chrono::milliseconds keep_alive_every{1000};  // a third of the workers' shortest session lease
  // A prompt (and a replay) is sent in chunks of this many tokens, one after another without
  // waiting (Step.prefill_only); 0: chosen per prompt from prompt_costs, and without them the
  // whole prompt in one step. A scored request is always one step.
  int64_t prompt_chunk = 0;
  std::vector<plan::PromptStageCost> prompt_costs;  // of the pipeline's resources, in order
};

// What outlives a run: the head's counters, updated by each run.
struct RunCounters {
  uint64_t next_sequence = 1;
  uint64_t next_request = 1;
  double step_ema_us = 0;  // round trip of one decode step, 0 until measured
};

struct RunOptions {
  std::chrono::milliseconds min_step_timeout{3000};  // a step's deadline is never shorter
  const std::atomic<bool>* cancel = nullptr;        // set (e.g. by a signal handler) to stop
  std::function<std::chrono::steady_clock::time_point()> clock;  // default: steady_clock::now
  RunTrace* trace = nullptr;  // when given, every decode token is recorded in it
};

class GenerationRun;

// What a sequence still needs, for the balancer's estimate of the remaining work.
struct LiveSequence {
  uint64_t sequence = 0;
  int64_t position = 0;   // positions in its KV caches once its step in flight is done
  int64_t remaining = 0;  // tokens it may still generate (its budget, or until the context is full)
};

// Changes the pipeline of a running generation (see GenerationRun). All calls come from the
// thread that drives the run.
class RunController {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~RunController() = default;
  // Every message from a worker, before the run looks at it; true when it was the controller's.
  virtual bool take_message(GenerationRun& run, size_t worker, const wire::Envelope& e) = 0;
  // Every decode token, with its stages' timings (timings(s) is from run.stages()[s]).
  virtual void on_token(GenerationRun& run, const wire::TokenResult& token) = 0;
  // Once per turn of the run's loop.
  virtual void tick(GenerationRun& run) = 0;
  // While true, a sequence whose token arrived waits with its next step.
  virtual bool holding() const = 0;
  // While holding, once no step is in flight any more.
  virtual void drained(GenerationRun& run) = 0;
  // A worker outside the pipeline was lost.
  virtual void lost(GenerationRun& run, size_t worker) = 0;
  // A worker of the pipeline was lost; the run has abandoned its steps in flight and holds until
  // the controller calls replay(). False: the controller does not recover (the run then ends
  // every sequence with an error).
  virtual bool recover(GenerationRun& run, size_t worker) = 0;
  // A replayed sequence's first new token arrived.
  virtual void replayed(GenerationRun& run, uint64_t sequence) = 0;
  // The latest time the run may wait before the next tick.
  virtual Clock::time_point next_wakeup(Clock::time_point now) const = 0;
};

class GenerationRun {
 public:
  using Clock = std::chrono::steady_clock;
  using OnText = std::function<void(size_t, const std::string&)>;

  // on_text(i, text) streams request i; requests[i] is request i.
  GenerationRun(PipelineLinks& links, const text::Tokenizer& tokenizer, PipelineShape shape, RunCounters& counters,
                RunOptions options, std::vector<Request> requests, OnText on_text);
  ~GenerationRun();

  // start(), then turns until every sequence ended; one Generation per request.
  std::vector<Generation> run();

  // The steps of run().
  // Tokenizes every request and sends its prompt (or ends it at once: empty budget, prompt too long).
  void start();
  // Sequences run, or cancelled ones wait for their steps in flight to come back (see cancel()).
  bool active() const { return !by_sequence_.empty() || !cancelled_in_flight_.empty(); }
  // Between turns of a started run: a new request, started as start() starts each; returns its index.
  size_t admit(Request request);
  // Ends a request early (its text so far stays, its status is OK): its sequence is freed on
  // every worker at once, as soon as its step in flight has come back or is overdue (a
  // FreeSequence sent sooner could overtake the step on its way down the pipeline, which would
  // then start the sequence anew on the workers after it). Nothing when it has ended.
  void cancel(size_t request);
  bool ended(size_t request) const;
  // An ended request's generation; its index is then free for a later admit().
  Generation release(size_t request);
  // One turn of the loop: cancellation, lost links, deadlines, then waiting for and taking replies.
  void turn();
  // Step { session, sequence, position, n_tokens, tokens[], sampler (first step), end_sequence, score,
  // prefill_only } -> worker 0: one step, or from position 0 the prompt's chunks (chunk_size).
  Status send_step(size_t request, std::vector<int32_t> tokens, int64_t position);
  // Tokens per chunk for a prompt (or replay) of n_tokens: the shape's, or chosen from its costs.
  int64_t chunk_size(int64_t n_tokens) const;
  // Reads what `worker` has sent: tokens, errors, probe answers.
  void take_replies(size_t worker);
  void take_token(size_t worker, const wire::Envelope& e);
  // A scored request's answer (Request.score): its log-probabilities, then the request ends.
  void take_scores(size_t request, size_t worker, const wire::TokenResult& result, Clock::time_point received);
  void take_error(const wire::ErrorReply& error);
  // Starts a probe when a step is overdue and ends it when its window has closed; true when it did.
  bool check_deadlines(Clock::time_point now);
  // Hello -> every worker, to learn which still answer.
  void probe(Clock::time_point now);
  // Ends the sequences the probe condemns: all when a worker stayed silent (naming it), else the overdue ones.
  void end_probe(Clock::time_point now);
  bool probing() const { return probing_; }
  void finish(size_t request, Status status);
  // After a recovery, on the new pipeline: every live sequence's prompt and generated tokens from
  // position 0, in chunks as a prompt (Step.samples_before = its generated count, on the first
  // chunk). Returns the tokens sent.
  uint64_t replay();
  void fail_all(const std::string& message);

  const std::vector<Generation>& generations() const { return out_; }

  // For the controller.
  void set_controller(RunController* controller) { controller_ = controller; }
  const std::vector<size_t>& stages() const { return stages_; }
  // Only while no step is in flight (or after a recovery abandoned them).
  void set_stages(std::vector<size_t> stages);
  size_t steps_in_flight() const;
  std::vector<LiveSequence> live_sequences() const;
  const PipelineShape& shape() const { return shape_; }
  Clock::time_point now() const { return options_.clock(); }
  double seconds_since_start(Clock::time_point t) const { return std::chrono::duration<double>(t - began_).count(); }
  uint64_t next_request_id() { return counters_.next_request++; }
  PipelineLinks& links() { return links_; }

 private:
  struct Sequence;
  // The next time the loop must look at the clock: a deadline, the probe's end, or 100 ms.
  Clock::time_point next_wakeup(Clock::time_point now) const;
  double expected_us(int64_t n_tokens) const;
  // FreeSequence { session, sequence } -> every worker still connected
  void free_sequence(uint64_t sequence);
  const std::string& describe(size_t worker) const { return shape_.worker_names[worker]; }
  bool cancelled() const { return options_.cancel != nullptr && options_.cancel->load(); }

  PipelineLinks& links_;
  const text::Tokenizer& tokenizer_;
  const PipelineShape shape_;
  RunCounters& counters_;
  const RunOptions options_;
  std::vector<Request> requests_;  // by request
  const OnText on_text_;
  const size_t n_workers_;
  const Clock::time_point began_;
  std::vector<Sequence> sequences_;  // by request
  std::vector<Generation> out_;      // by request
  std::map<uint64_t, size_t> by_sequence_;  // the sequences still running -> their request
  std::vector<size_t> released_;             // indexes free for admit()
  // Cancelled sequences -> the deadline of their step in flight; freed once it comes back.
  std::map<uint64_t, Clock::time_point> cancelled_in_flight_;
  void free_cancelled(bool all, Clock::time_point now);
  // Steps kept back while the controller holds: a generated token, or a new request's prompt.
  struct HeldStep {
    size_t request;
    std::vector<int32_t> tokens;
    int64_t position;
  };
  // Tokenizes request i and sends its prompt, or holds it back while the controller holds.
  void begin(size_t request);
  void send_held();
  bool in_pipeline(size_t worker) const;
  // A worker of the pipeline was lost: the controller recovers (true) or the run ends.
  bool recover_from(size_t worker);
  // KeepAlive { session } -> every connected worker every shape.keep_alive_every, so that no
  // worker frees the session while this head lives.
  void keep_alive(Clock::time_point now);

  std::vector<size_t> stages_;
  RunController* controller_ = nullptr;
  std::vector<HeldStep> held_;
  bool drained_reported_ = false;
  std::vector<bool> lost_reported_;
  Clock::time_point next_keep_alive_{};
  bool probing_ = false;
  Clock::time_point probe_until_{};
  std::vector<bool> probe_answered_;
};

}  // namespace ll::cluster
