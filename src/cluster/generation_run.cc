#include "cluster/generation_run.h"

#include <fmt/format.h>

#include <algorithm>

#include "cluster/sampler_wire.h"
#include "exec/generate.h"

namespace ll::cluster {
namespace {

using Clock = GenerationRun::Clock;
using std::chrono::milliseconds;

// Until a step has been measured, deadlines assume this pessimistic pipeline speed.
constexpr double kSlowestFlops = 1e9;
// A step is declared lost after this many times its expected round trip.
constexpr double kDeadlineFactor = 10;
constexpr milliseconds kProbeTimeout{1500};
// Most messages taken from one worker before the others are looked at again.
constexpr int kMaxReadsPerWorker = 64;

uint64_t micros(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

RunOptions with_clock(RunOptions options) {
  if (!options.clock) options.clock = [] { return Clock::now(); };
  return options;
}

}  // namespace

std::vector<Request> parallel_requests(const std::string& prompt, int64_t n_predict,
                                       const text::SamplerParams& sampling, size_t k) {
  std::vector<Request> requests(k);
  for (size_t i = 0; i < k; ++i) {
    requests[i].prompt = prompt;
    requests[i].n_predict = n_predict;
    requests[i].sampling = sampling;
    requests[i].sampling.seed = sampling.seed + i;
  }
  return requests;
}

struct GenerationRun::Sequence {
  uint64_t sequence = 0;
  std::vector<int32_t> pending;  // the tokens of the step in flight
  int64_t position = 0;          // of the step in flight
  bool end_sent = false;         // the step in flight frees the sequence on every worker
  Clock::time_point sent_at, started;
  Clock::time_point deadline;
  bool first_token_seen = false;
  Clock::time_point first_token_at;
  std::unique_ptr<text::Detokenizer> detok;
  uint64_t step_bytes = 0;  // payload of the step in flight over every link
  bool in_flight = false;
  bool replaying = false;  // the step in flight replays the sequence after a recovery
  bool done = false;
};

GenerationRun::GenerationRun(PipelineLinks& links, const text::Tokenizer& tokenizer, PipelineShape shape,
                             RunCounters& counters, RunOptions options, std::vector<Request> requests, OnText on_text)
    : links_(links),
      tokenizer_(tokenizer),
      shape_(std::move(shape)),
      counters_(counters),
      options_(with_clock(std::move(options))),
      requests_(std::move(requests)),
      on_text_(std::move(on_text)),
      n_workers_(links.size()),
      began_(options_.clock()),
      sequences_(requests_.size()),
      out_(requests_.size()),
      probe_answered_(links.size()) {
  stages_ = shape_.stages;
  lost_reported_.assign(n_workers_, false);
  if (stages_.empty()) {
    for (size_t w = 0; w < n_workers_; ++w) stages_.push_back(w);
  }
}

GenerationRun::~GenerationRun() = default;

std::vector<Generation> GenerationRun::run() {
  start();
  while (active()) turn();
  return std::move(out_);
}

void GenerationRun::start() {
  for (size_t i = 0; i < requests_.size(); ++i) begin(i);
}

size_t GenerationRun::admit(Request request) {
  size_t i = requests_.size();
  if (!released_.empty()) {
    i = released_.back();
    released_.pop_back();
    requests_[i] = std::move(request);
    sequences_[i] = Sequence{};
    out_[i] = Generation{};
  } else {
    requests_.push_back(std::move(request));
    sequences_.emplace_back();
    out_.emplace_back();
  }
  begin(i);
  return i;
}

void GenerationRun::cancel(size_t request) {
  Sequence& a = sequences_[request];
  if (a.done) return;
  const bool defer = a.in_flight && !a.end_sent;
  if (defer) a.end_sent = true;  // so that finish() does not free it now
  finish(request, Status::Ok());
  if (defer) cancelled_in_flight_[a.sequence] = a.deadline;
}

// Those whose step is overdue (or all): a step that never comes back starts nothing anew.
void GenerationRun::free_cancelled(bool all, Clock::time_point now) {
  for (auto it = cancelled_in_flight_.begin(); it != cancelled_in_flight_.end();) {
    if (!all && it->second > now) {
      ++it;
      continue;
    }
    free_sequence(it->first);
    it = cancelled_in_flight_.erase(it);
  }
}

bool GenerationRun::ended(size_t request) const { return sequences_[request].done; }

Generation GenerationRun::release(size_t request) {
  Generation g = std::move(out_[request]);
  out_[request] = Generation{};
  requests_[request] = Request{};
  sequences_[request].detok.reset();
  released_.push_back(request);
  return g;
}

void GenerationRun::begin(size_t i) {
  const text::Vocab& vocab = tokenizer_.vocab();
  const Request& rq = requests_[i];
  Sequence& a = sequences_[i];
  Generation& g = out_[i];
  a.sequence = counters_.next_sequence++;
  g.stages.resize(n_workers_);
  g.prompt_tokens = rq.prompt_tokens.empty() ? tokenizer_.encode(rq.prompt, /*add_special=*/true) : rq.prompt_tokens;
  if (g.prompt_tokens.empty()) g.prompt_tokens.push_back(vocab.bos);
  a.detok = std::make_unique<text::Detokenizer>(tokenizer_);
  for (int32_t t : g.prompt_tokens) a.detok->push(t);  // not echoed; decides the first piece's leading space
  a.started = options_.clock();
  // A scored prompt may fill the context: no token follows it.
  const int64_t room = rq.score ? shape_.n_ctx + 1 : shape_.n_ctx;
  if (static_cast<int64_t>(g.prompt_tokens.size()) >= room) {
    a.done = true;
    g.status = Status::Errorf("the prompt has {} tokens but the context holds {}", g.prompt_tokens.size(), shape_.n_ctx);
    return;
  }
  Status valid = rq.score ? Status::Ok() : exec::validate_n_predict(rq.n_predict);
  if (valid.ok() && !rq.score) valid = text::validate(rq.sampling);
  if (valid.ok() && rq.score && g.prompt_tokens.size() < 2) {
    valid = Status::Errorf("scoring needs at least 2 tokens (each scores the next), got {}", g.prompt_tokens.size());
  }
  if (!valid.ok()) {
    a.done = true;
    g.status = std::move(valid);
    return;
  }
  if (!rq.score && exec::predicted_all(0, rq.n_predict)) {
    a.done = true;
    return;
  }
  by_sequence_[a.sequence] = i;
  if (controller_ != nullptr && controller_->holding()) {
    held_.push_back({i, g.prompt_tokens, 0});
    return;
  }
  Status st = send_step(i, g.prompt_tokens, 0);
  if (!st.ok()) finish(i, Status::Errorf("{}: {}", describe(stages_.front()), st.message()));
}

double GenerationRun::expected_us(int64_t n_tokens) const {
  const double per_step =
      counters_.step_ema_us > 0 ? counters_.step_ema_us : shape_.flops_per_token / kSlowestFlops * 1e6;
  return per_step * static_cast<double>(n_tokens);
}

int64_t GenerationRun::chunk_size(int64_t n_tokens) const {
  if (shape_.prompt_chunk > 0) return std::min(shape_.prompt_chunk, n_tokens);
  return plan::choose_prompt_chunk(shape_.prompt_costs, n_tokens);
}

Status GenerationRun::send_step(size_t request, std::vector<int32_t> tokens, int64_t position) {
  const Request& rq = requests_[request];
  Generation& g = out_[request];
  Sequence& a = sequences_[request];
  const int64_t n = static_cast<int64_t>(tokens.size());
  // The last token this sequence needs: every worker frees it after this step.
  a.end_sent = rq.score || exec::predicted_all(static_cast<int64_t>(g.tokens.size()) + 1, rq.n_predict) ||
               position + n >= shape_.n_ctx;
  // Only a prompt or a replay has more than one token; the head waits for its last chunk's token
  // alone, so the sequence has one step in flight however many chunks it crosses in.
  const int64_t chunk = position == 0 && !rq.score ? chunk_size(n) : n;
  if (position == 0 && !a.first_token_seen) g.prompt_chunk = chunk;
  a.step_bytes = 0;
  std::vector<wire::Envelope> chunks;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    const bool last = end == n;
    wire::Envelope& e = chunks.emplace_back();
    e.set_request_id(counters_.next_request++);
    wire::Step* s = e.mutable_step();
    s->set_session(shape_.session);
    s->set_sequence(a.sequence);
    s->set_position(static_cast<uint32_t>(position + begin));
    s->set_n_tokens(static_cast<uint32_t>(end - begin));
    for (int64_t i = begin; i < end; ++i) s->add_tokens(tokens[i]);
    if (position + begin == 0) {
      sampler_to_wire(rq.sampling, s->mutable_sampler());
      s->set_samples_before(static_cast<uint32_t>(g.tokens.size()));  // a replay: every generated token was sampled
    }
    s->set_end_sequence(last && a.end_sent);
    s->set_score(rq.score);
    s->set_prefill_only(!last);
    const uint64_t envelope = e.ByteSizeLong();
    a.step_bytes += envelope + (stages_.size() - 1) * (envelope + (end - begin) * shape_.n_embd * shape_.hidden_value_bytes);
  }
  a.pending = std::move(tokens);
  a.position = position;
  a.sent_at = options_.clock();
  const double timeout_us = std::max<double>(options_.min_step_timeout.count() * 1000.0,
                                             kDeadlineFactor * expected_us(static_cast<int64_t>(a.pending.size())));
  a.deadline = a.sent_at + std::chrono::microseconds(static_cast<int64_t>(timeout_us));
  a.in_flight = true;
  for (const wire::Envelope& e : chunks) LL_RETURN_IF_ERROR(links_.send(stages_.front(), e));
  return Status::Ok();
}

void GenerationRun::free_sequence(uint64_t sequence) {
  for (size_t w = 0; w < n_workers_; ++w) {
    if (links_.disconnected(w)) continue;
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_free_sequence()->set_session(shape_.session);
    e.mutable_free_sequence()->set_sequence(sequence);
    (void)links_.send(w, e);  // best effort: a worker that is gone has freed it anyway
  }
}

void GenerationRun::finish(size_t request, Status status) {
  Sequence& a = sequences_[request];
  if (a.done) return;
  a.done = true;
  Generation& g = out_[request];
  g.status = std::move(status);
  if (a.detok) {
    std::string rest = a.detok->flush();
    if (!rest.empty() && g.status.ok()) {
      g.text += rest;
      on_text_(request, rest);
    }
  }
  if (a.first_token_seen) g.generate_seconds = std::chrono::duration<double>(options_.clock() - a.first_token_at).count();
  if (!g.status.ok() || !a.end_sent) free_sequence(a.sequence);
  by_sequence_.erase(a.sequence);
}

void GenerationRun::fail_all(const std::string& message) {
  free_cancelled(/*all=*/true, options_.clock());
  for (size_t i = 0; i < sequences_.size(); ++i) finish(i, Status::Error(message));
}

Clock::time_point GenerationRun::next_wakeup(Clock::time_point now) const {
  Clock::time_point earliest = now + milliseconds(100);
  if (probing_) return std::min(earliest, probe_until_);
  for (const auto& [seq, i] : by_sequence_) {
    if (sequences_[i].in_flight) earliest = std::min(earliest, sequences_[i].deadline);
  }
  for (const auto& [seq, deadline] : cancelled_in_flight_) earliest = std::min(earliest, deadline);
  if (controller_ != nullptr) earliest = std::min(earliest, controller_->next_wakeup(now));
  return earliest;
}

void GenerationRun::turn() {
  if (cancelled()) return fail_all("interrupted");
  for (size_t w = 0; w < n_workers_; ++w) {
    // A link the controller replaced (reconnect) may be lost again: it is reported again.
    if (!links_.disconnected(w)) {
      lost_reported_[w] = false;
      continue;
    }
    if (lost_reported_[w]) continue;
    lost_reported_[w] = true;
    if (in_pipeline(w)) {
      if (!recover_from(w)) return fail_all(fmt::format("{}: {}", describe(w), links_.disconnect_reason(w)));
    } else if (controller_ != nullptr) {
      controller_->lost(*this, w);
    }
    if (!active()) return;
  }
  keep_alive(options_.clock());
  if (controller_ != nullptr) {
    controller_->tick(*this);
    if (!controller_->holding()) {
      drained_reported_ = false;
      send_held();
    } else if (!drained_reported_ && steps_in_flight() == 0) {
      drained_reported_ = true;
      controller_->drained(*this);
      if (!controller_->holding()) send_held();
    }
    if (!active()) return;
  }
  const Clock::time_point now = options_.clock();
  free_cancelled(/*all=*/false, now);
  if (check_deadlines(now)) return;
  const auto wait = std::max(next_wakeup(now) - now, Clock::duration::zero());
  for (size_t w : links_.poll(std::chrono::duration_cast<milliseconds>(wait))) take_replies(w);
}

bool GenerationRun::check_deadlines(Clock::time_point now) {
  if (probing_) {
    if (now < probe_until_) return false;
    end_probe(now);
    return true;
  }
  if (now < next_wakeup(now)) return false;
  probe(now);
  return true;
}

bool GenerationRun::in_pipeline(size_t worker) const {
  return std::find(stages_.begin(), stages_.end(), worker) != stages_.end();
}

void GenerationRun::set_stages(std::vector<size_t> stages) { stages_ = std::move(stages); }

void GenerationRun::keep_alive(Clock::time_point now) {
  if (now < next_keep_alive_) return;
  next_keep_alive_ = now + shape_.keep_alive_every;
  for (size_t w = 0; w < n_workers_; ++w) {
    if (links_.disconnected(w)) continue;
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_keep_alive()->set_session(shape_.session);
    (void)links_.send(w, e);  // a worker we cannot reach is someone else's concern
  }
}

bool GenerationRun::recover_from(size_t worker) {
  if (controller_ == nullptr) return false;
  // Every step in flight (and every one held back) may have reached the lost worker: each live
  // sequence starts afresh under a new id, and its old id is freed wherever it was.
  held_.clear();
  probing_ = false;
  free_cancelled(/*all=*/true, options_.clock());
  for (const auto& [old_id, i] : std::map<uint64_t, size_t>(by_sequence_)) {
    Sequence& a = sequences_[i];
    free_sequence(a.sequence);
    by_sequence_.erase(old_id);
    a.sequence = counters_.next_sequence++;
    a.in_flight = false;
    by_sequence_[a.sequence] = i;
  }
  drained_reported_ = false;
  return controller_->recover(*this, worker);
}

uint64_t GenerationRun::replay() {
  held_.clear();  // every live sequence is sent whole below, a request admitted while holding too
  uint64_t sent = 0;
  for (const auto& [seq, i] : std::map<uint64_t, size_t>(by_sequence_)) {
    const Generation& g = out_[i];
    std::vector<int32_t> tokens = g.prompt_tokens;
    tokens.insert(tokens.end(), g.tokens.begin(), g.tokens.end());
    sent += tokens.size();
    Status st = send_step(i, std::move(tokens), 0);
    sequences_[i].replaying = true;
    if (!st.ok()) finish(i, Status::Errorf("{}: {}", describe(stages_.front()), st.message()));
  }
  return sent;
}

size_t GenerationRun::steps_in_flight() const {
  size_t n = cancelled_in_flight_.size();
  for (const auto& [seq, i] : by_sequence_) n += sequences_[i].in_flight ? 1 : 0;
  return n;
}

std::vector<LiveSequence> GenerationRun::live_sequences() const {
  std::vector<LiveSequence> out;
  for (const auto& [seq, i] : by_sequence_) {
    const Sequence& a = sequences_[i];
    const int64_t position = a.position + static_cast<int64_t>(a.pending.size());
    const int64_t n_predict = requests_[i].n_predict;
    const int64_t to_context = shape_.n_ctx - position;
    const int64_t budget = n_predict < 0 ? to_context : n_predict - static_cast<int64_t>(out_[i].tokens.size());
    out.push_back({seq, position, std::max<int64_t>(0, std::min(budget, to_context))});
  }
  return out;
}

void GenerationRun::send_held() {
  std::vector<HeldStep> held = std::move(held_);
  held_.clear();
  for (const HeldStep& h : held) {
    if (sequences_[h.request].done) continue;
    Status st = send_step(h.request, h.tokens, h.position);
    if (!st.ok()) finish(h.request, Status::Errorf("{}: {}", describe(stages_.front()), st.message()));
  }
}

void GenerationRun::probe(Clock::time_point now) {
  for (size_t w : stages_) {
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_hello()->set_client("lingualinked head (probe)");
    probe_answered_[w] = false;
    (void)links_.send(w, e);  // a worker we cannot even send to stays silent
  }
  probing_ = true;
  probe_until_ = now + std::max(kProbeTimeout, milliseconds(static_cast<int64_t>(2 * counters_.step_ema_us / 1000)));
}

void GenerationRun::end_probe(Clock::time_point now) {
  std::string silent;
  for (size_t w : stages_) {
    if (!probe_answered_[w]) silent += (silent.empty() ? "" : ", ") + describe(w);
  }
  const std::string why = silent.empty() ? "every worker still answers, so a message was lost or rejected on the way"
                                         : silent + " stopped responding";
  for (const auto& [seq, i] : std::map<uint64_t, size_t>(by_sequence_)) {
    const Sequence& a = sequences_[i];
    if (silent.empty() && (!a.in_flight || a.deadline > now)) continue;
    finish(i, Status::Errorf("sequence {}: no reply within {:.1f} s: {}", a.sequence,
                             std::chrono::duration<double>(now - a.sent_at).count(), why));
  }
  probing_ = false;
}

void GenerationRun::take_replies(size_t w) {
  for (int reads = 0; reads < kMaxReadsPerWorker; ++reads) {
    auto r = links_.receive(w);
    if (!r.ok()) {
      fail_all(fmt::format("{}: {}", describe(w), r.error()));
      break;
    }
    if (!r.value()) break;
    const wire::Envelope& e = r.value()->envelope();
    if (controller_ != nullptr && controller_->take_message(*this, w, e)) continue;
    if (e.has_hello_reply()) {
      probe_answered_[w] = true;
    } else if (e.has_error()) {
      take_error(e.error());
    } else {
      take_token(w, e);
    }
  }
}

void GenerationRun::take_error(const wire::ErrorReply& err) {
  if (cancelled_in_flight_.erase(err.sequence()) != 0) free_sequence(err.sequence());  // its step ended there
  auto it = by_sequence_.find(err.sequence());
  if (it != by_sequence_.end()) {
    finish(it->second, Status::Error(err.message()));
  } else if (err.sequence() == 0) {
    fail_all(err.message());
  }
}

void GenerationRun::take_token(size_t w, const wire::Envelope& e) {
  if (!e.has_token() || e.token().session() != shape_.session) return;
  const wire::TokenResult& tr = e.token();
  if (cancelled_in_flight_.erase(tr.sequence()) != 0) return free_sequence(tr.sequence());
  auto it = by_sequence_.find(tr.sequence());
  if (it == by_sequence_.end()) return;  // a sequence that already ended
  const size_t request = it->second;
  Sequence& a = sequences_[request];
  Generation& g = out_[request];
  const Request& rq = requests_[request];
  const auto received = options_.clock();
  a.in_flight = false;
  if (rq.score) return take_scores(request, w, tr, received);
  const int32_t token = tr.token();
  if (w != stages_.back() || token < 0 || token >= shape_.n_vocab ||
      tr.timings_size() != static_cast<int>(stages_.size())) {
    finish(request, Status::Errorf("{} sent an invalid token result (token {}, {} stage timings)", describe(w), token,
                                   tr.timings_size()));
    return;
  }
  // A replay is a prefill of the tokens so far: neither its time nor its stages' timings are a
  // decode step's.
  const bool replayed = a.replaying;
  a.replaying = false;
  if (replayed && controller_ != nullptr) controller_->replayed(*this, a.sequence);
  if (a.first_token_seen && !replayed) {
    // Decode step statistics.
    const uint64_t rtt = micros(received - a.sent_at);
    counters_.step_ema_us = counters_.step_ema_us == 0 ? rtt : 0.8 * counters_.step_ema_us + 0.2 * rtt;
    g.decode_steps++;
    g.round_trip_us += rtt;
    g.wire_bytes += a.step_bytes + e.ByteSizeLong();
    TokenTrace traced{.seconds = std::chrono::duration<double>(received - began_).count(), .request = request, .stages = {}};
    for (int s = 0; s < tr.timings_size(); ++s) {
      StageStats& st = g.stages[stages_[s]];
      st.steps++;
      st.compute_us += tr.timings(s).compute_us();
      st.queue_us += tr.timings(s).queue_us();
      st.send_us += tr.timings(s).send_us();
      traced.stages.push_back({stages_[s], tr.timings(s).compute_us() / 1e6, tr.timings(s).send_us() / 1e6,
                               tr.timings(s).queue_us() / 1e6});
    }
    if (options_.trace != nullptr) options_.trace->tokens.push_back(std::move(traced));
    if (controller_ != nullptr) controller_->on_token(*this, tr);
  } else if (!a.first_token_seen) {
    a.first_token_seen = true;
    a.first_token_at = received;
    g.prompt_seconds = std::chrono::duration<double>(received - a.started).count();
  }
  if (!rq.ignore_eos && tokenizer_.ends_generation(token)) {
    finish(request, Status::Ok());
    return;
  }
  g.tokens.push_back(token);
  g.token_seconds.push_back(std::chrono::duration<double>(received - began_).count());
  std::string piece = a.detok->push(token);
  if (!piece.empty()) {
    g.text += piece;
    on_text_(request, piece);
  }
  const int64_t position = a.position + static_cast<int64_t>(a.pending.size());
  if (exec::predicted_all(static_cast<int64_t>(g.tokens.size()), rq.n_predict) || position >= shape_.n_ctx) {
    finish(request, Status::Ok());
    return;
  }
  if (controller_ != nullptr && controller_->holding()) {
    held_.push_back({request, {token}, position});
    return;
  }
  Status st = send_step(request, {token}, position);
  if (!st.ok()) finish(request, Status::Errorf("{}: {}", describe(stages_.front()), st.message()));
}

void GenerationRun::take_scores(size_t request, size_t w, const wire::TokenResult& tr, Clock::time_point received) {
  Sequence& a = sequences_[request];
  Generation& g = out_[request];
  const size_t expected = a.pending.size() - 1;
  if (w != stages_.back() || static_cast<size_t>(tr.log_probs_size()) != expected ||
      tr.timings_size() != static_cast<int>(stages_.size())) {
    finish(request, Status::Errorf("{} sent an invalid score result ({} log-probabilities for {} tokens, {} stage "
                                   "timings)",
                                   describe(w), tr.log_probs_size(), a.pending.size(), tr.timings_size()));
    return;
  }
  for (float lp : tr.log_probs()) {
    if (!(lp <= 0.0f)) {  // also NaN
      finish(request, Status::Errorf("{} sent a log-probability of {} (must be <= 0)", describe(w), lp));
      return;
    }
  }
  if (a.replaying && controller_ != nullptr) controller_->replayed(*this, a.sequence);
  a.replaying = false;
  g.prompt_seconds = std::chrono::duration<double>(received - a.started).count();
  g.log_probs.assign(tr.log_probs().begin(), tr.log_probs().end());
  finish(request, Status::Ok());
}

}  // namespace ll::cluster
