// A generation run against a fake pipeline: scripted workers, a clock that only moves when the
// run waits, no processes or sockets.
#include "cluster/generation_run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <map>
#include <set>

namespace ll {
namespace {

using cluster::Generation;
using cluster::GenerationRun;
using cluster::Request;
using Clock = GenerationRun::Clock;
using std::chrono::milliseconds;

constexpr uint64_t kSession = 77;
constexpr int32_t kBos = 1, kEos = 2;

// Links to scripted workers. Whatever the run sends is recorded and handed to `on_send`, which
// may queue replies; poll() with nothing queued moves the clock on by the time it was asked to wait.
class FakeLinks final : public cluster::PipelineLinks {
 public:
  FakeLinks(size_t n, Clock::time_point& now) : inbox_(n), lost_(n), now_(now) {}

  size_t size() const override { return inbox_.size(); }
  Status send(size_t worker, const wire::Envelope& e) override {
    sent.emplace_back(worker, e);
    if (on_send) on_send(worker, e);
    return Status::Ok();
  }
  Status send(size_t worker, const wire::Envelope& e, std::vector<zmq::message_t>) override { return send(worker, e); }
  Result<std::optional<net::Message>> receive(size_t worker) override {
    if (inbox_[worker].empty()) return std::optional<net::Message>();
    net::Message m;
    m.envelope() = std::move(inbox_[worker].front());
    inbox_[worker].pop_front();
    return std::optional<net::Message>(std::move(m));
  }
  std::vector<size_t> poll(milliseconds timeout) override {
    std::vector<size_t> ready;
    for (size_t w = 0; w < inbox_.size(); ++w) {
      if (!inbox_[w].empty()) ready.push_back(w);
    }
    if (ready.empty()) now_ += std::max(timeout, milliseconds(1));
    if (++polls_ > 100000) lose(0, "the test's run never ended");
    return ready;
  }
  bool disconnected(size_t worker) override { return !lost_[worker].empty(); }
  std::string disconnect_reason(size_t worker) override { return lost_[worker]; }

  void reply(size_t worker, wire::Envelope e) { inbox_[worker].push_back(std::move(e)); }
  void lose(size_t worker, std::string reason) { lost_[worker] = std::move(reason); }

  // The envelopes sent to `worker` with the given body.
  std::vector<wire::Envelope> sent_to(size_t worker, wire::Envelope::BodyCase body) const {
    std::vector<wire::Envelope> out;
    for (const auto& [w, e] : sent) {
      if (w == worker && e.body_case() == body) out.push_back(e);
    }
    return out;
  }

  std::vector<std::pair<size_t, wire::Envelope>> sent;
  std::function<void(size_t, const wire::Envelope&)> on_send;

 private:
  std::vector<std::deque<wire::Envelope>> inbox_;
  std::vector<std::string> lost_;
  Clock::time_point& now_;
  int polls_ = 0;
};

wire::Envelope token_result(uint64_t sequence, int32_t token, int timings, uint64_t session = kSession) {
  wire::Envelope e;
  wire::TokenResult* t = e.mutable_token();
  t->set_session(session);
  t->set_sequence(sequence);
  t->set_token(token);
  for (int s = 0; s < timings; ++s) {
    wire::StageTiming* st = t->add_timings();
    st->set_stage(static_cast<uint32_t>(s));
    st->set_compute_us(100 * (s + 1));
    st->set_queue_us(10);
    st->set_send_us(1);
  }
  return e;
}

wire::Envelope hello_reply(const std::string& name) {
  wire::Envelope e;
  e.mutable_hello_reply()->set_worker(name);
  return e;
}

wire::Envelope error_reply(uint64_t sequence, const std::string& message) {
  wire::Envelope e;
  e.mutable_error()->set_message(message);
  e.mutable_error()->set_session(kSession);
  e.mutable_error()->set_sequence(sequence);
  return e;
}

text::Tokenizer tiny_tokenizer() {
  text::Vocab v;
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", "\xE2\x96\x81" "b", "c"};
  v.scores.assign(v.tokens.size(), 0);
  v.types = {text::TokenType::Unknown, text::TokenType::Control, text::TokenType::Control,
             text::TokenType::Normal,  text::TokenType::Normal,  text::TokenType::Normal};
  v.bos = kBos;
  v.eos = kEos;
  auto tok = text::Tokenizer::create(std::move(v));
  EXPECT_TRUE(tok.ok()) << tok.error();
  return std::move(tok).value();
}

// A two-worker pipeline (n_ctx 16, 6 tokens) whose clock starts at an hour.
struct Pipeline {
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  FakeLinks links{2, now};
  text::Tokenizer tokenizer = tiny_tokenizer();
  cluster::RunCounters counters;
  std::atomic<bool> cancel{false};
  std::vector<Request> requests;
  std::map<size_t, std::string> streamed;
  std::unique_ptr<GenerationRun> run;
  int64_t prompt_chunk = 0;
  std::vector<plan::PromptStageCost> prompt_costs;

  GenerationRun& make(int64_t n_ctx = 16) {
    cluster::PipelineShape shape{.session = kSession, .n_ctx = n_ctx, .n_embd = 4, .n_vocab = 6,
                                 .flops_per_token = 1e6,  // 1 ms a step until measured: the 3 s minimum rules
                                 .worker_names = {"worker 1 (tcp://a)", "worker 2 'b' (tcp://b)"},
                                 .stages = {},
                                 .prompt_chunk = prompt_chunk,
                                 .prompt_costs = prompt_costs};
    cluster::RunOptions options{.min_step_timeout = milliseconds(3000), .cancel = &cancel, .clock = [this] { return now; }};
    run = std::make_unique<GenerationRun>(links, tokenizer, shape, counters, options, requests,
                                          [this](size_t i, const std::string& text) { streamed[i] += text; });
    return *run;
  }

  // The last worker answers each step of sequence s with the next of tokens[s] (nothing once
  // they run out), `step_time` after it was sent; every worker answers probes unless silent.
  void script(std::map<uint64_t, std::deque<int32_t>> tokens, milliseconds step_time = milliseconds(0),
              std::set<size_t> silent = {}) {
    links.on_send = [this, tokens, step_time, silent](size_t w, const wire::Envelope& e) mutable {
      if (e.has_hello() && silent.count(w) == 0) links.reply(w, hello_reply(fmt::format("w{}", w)));
      if (!e.has_step()) return;
      auto& next = tokens[e.step().sequence()];
      if (next.empty()) return;
      now += step_time;
      links.reply(1, token_result(e.step().sequence(), next.front(), 2));
      next.pop_front();
    };
  }
};

Request request(std::vector<int32_t> prompt, int64_t n_predict) {
  Request r;
  r.prompt_tokens = std::move(prompt);
  r.n_predict = n_predict;
  return r;
}

TEST(GenerationRun, StreamsTheTokensInOrderAndSendsTheRightSteps) {
  Pipeline p;
  Request r = request({kBos, 3}, 3);
  r.sampling.temp = 0.5f;
  r.sampling.seed = 9;
  p.requests = {r};
  p.script({{1, {4, 5, 3}}}, milliseconds(5));
  const std::vector<Generation> out = p.make().run();

  ASSERT_EQ(out.size(), 1u);
  const Generation& g = out[0];
  ASSERT_TRUE(g.status.ok()) << g.status.message();
  EXPECT_EQ(g.prompt_tokens, (std::vector<int32_t>{kBos, 3}));
  EXPECT_EQ(g.tokens, (std::vector<int32_t>{4, 5, 3}));
  EXPECT_EQ(g.text, " bc a");
  EXPECT_EQ(p.streamed[0], g.text);

  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(p.links.sent.size() - p.links.sent_to(0, wire::Envelope::kKeepAlive).size() -
                p.links.sent_to(1, wire::Envelope::kKeepAlive).size(),
            3u)
      << "only steps (besides keep-alives), all to the first worker";
  const std::vector<std::vector<int32_t>> tokens = {{kBos, 3}, {4}, {5}};
  const std::vector<uint32_t> positions = {0, 2, 3};
  for (size_t i = 0; i < steps.size(); ++i) {
    const wire::Step& s = steps[i].step();
    EXPECT_EQ(s.session(), kSession);
    EXPECT_EQ(s.sequence(), 1u);
    EXPECT_EQ(s.position(), positions[i]);
    EXPECT_EQ(s.n_tokens(), tokens[i].size());
    EXPECT_EQ(std::vector<int32_t>(s.tokens().begin(), s.tokens().end()), tokens[i]);
    EXPECT_EQ(s.has_sampler(), i == 0) << "the sampler travels with the first step only";
    EXPECT_EQ(s.end_sequence(), i == 2) << "the last step frees the sequence";
    EXPECT_EQ(s.hidden_bytes(), 0u);
    if (i > 0) {
      EXPECT_GT(steps[i].request_id(), steps[i - 1].request_id());
    }
  }
  EXPECT_EQ(steps[0].step().sampler().temp(), 0.5f);
  EXPECT_EQ(steps[0].step().sampler().seed(), 9u);

  // The first token answers the prompt; the two after it are decode steps of 5 ms each.
  EXPECT_DOUBLE_EQ(g.prompt_seconds, 0.005);
  EXPECT_DOUBLE_EQ(g.generate_seconds, 0.010);
  EXPECT_EQ(g.token_seconds, (std::vector<double>{0.005, 0.010, 0.015}));
  EXPECT_EQ(g.decode_steps, 2u);
  EXPECT_EQ(g.round_trip_us, 10000u);
  EXPECT_DOUBLE_EQ(p.counters.step_ema_us, 5000);
  EXPECT_GT(g.wire_bytes, 2 * 2 * 4 * sizeof(float)) << "the hidden state between the workers counts";
  ASSERT_EQ(g.stages.size(), 2u);
  EXPECT_EQ(g.stages[0].steps, 2u);
  EXPECT_EQ(g.stages[0].compute_us, 200u);
  EXPECT_EQ(g.stages[1].compute_us, 400u);
  EXPECT_EQ(g.stages[1].queue_us, 20u);
  EXPECT_EQ(p.counters.next_sequence, 2u);
}

TEST(GenerationRun, AStepPastItsDeadlineProbesEveryWorker) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4)};
  p.script({});  // no tokens ever
  GenerationRun& run = p.make();
  const Clock::time_point began = p.now;
  run.start();
  while (!run.probing()) run.turn();
  EXPECT_EQ(p.now, began + milliseconds(3000)) << "the minimum step timeout, as no step was measured";
  for (size_t w = 0; w < 2; ++w) {
    const auto hellos = p.links.sent_to(w, wire::Envelope::kHello);
    ASSERT_EQ(hellos.size(), 1u) << "worker " << w;
    EXPECT_EQ(hellos[0].hello().client(), "lingualinked head (probe)");
  }
  EXPECT_TRUE(run.active());
}

TEST(GenerationRun, AWorkerSilentThroughTheProbeEndsEverySequenceNamingIt) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4), request({kBos, 4}, 4)};
  // Sequence 2 gets its first token 2 s in, so its step in flight is not overdue at the probe.
  p.script({}, milliseconds(0), /*silent=*/{1});
  GenerationRun& run = p.make();
  run.start();
  const Clock::time_point began = p.now;
  while (p.now < began + milliseconds(2000)) run.turn();
  p.links.reply(1, token_result(2, 5, 2));
  while (run.active()) run.turn();
  const std::vector<Generation>& out = run.generations();
  EXPECT_EQ(out[0].status.message(),
            "sequence 1: no reply within 4.5 s: worker 2 'b' (tcp://b) stopped responding");
  EXPECT_EQ(out[1].status.message(),
            "sequence 2: no reply within 2.5 s: worker 2 'b' (tcp://b) stopped responding");
  EXPECT_EQ(out[1].tokens, (std::vector<int32_t>{5}));
  // Both freed on every worker: their ends were never sent.
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kFreeSequence).size(), 2u);
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 2u);
}

TEST(GenerationRun, WhenEveryWorkerAnswersOnlyOverdueSequencesEnd) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4), request({kBos, 4}, 2)};
  p.script({});
  GenerationRun& run = p.make();
  run.start();
  const Clock::time_point began = p.now;
  p.now = began + milliseconds(3000);
  run.turn();
  ASSERT_TRUE(run.probing());
  // During the probe: every worker answers, and sequence 2's token arrives (its next step is sent).
  p.links.reply(1, token_result(2, 5, 2));
  run.turn();
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kStep).size(), 3u);
  p.now = began + milliseconds(4500);
  run.turn();
  EXPECT_FALSE(run.probing());
  const std::vector<Generation>& out = run.generations();
  EXPECT_EQ(out[0].status.message(),
            "sequence 1: no reply within 4.5 s: every worker still answers, so a message was lost or rejected on "
            "the way");
  EXPECT_TRUE(out[1].status.ok());
  EXPECT_TRUE(run.active()) << "sequence 2 waits for its next token";
  p.links.reply(1, token_result(2, 3, 2));
  while (run.active()) run.turn();
  EXPECT_TRUE(out[1].status.ok()) << out[1].status.message();
  EXPECT_EQ(out[1].tokens, (std::vector<int32_t>{5, 3}));
}

TEST(GenerationRun, AMeasuredStepSetsALongerProbeWindow) {
  Pipeline p;
  p.counters.step_ema_us = 2e6;  // 2 s a token: the prompt's deadline is 40 s, the probe 4 s
  p.requests = {request({kBos, 3}, 4)};
  p.script({});
  GenerationRun& run = p.make();
  const Clock::time_point began = p.now;
  run.start();
  while (!run.probing()) run.turn();
  EXPECT_EQ(p.now, began + milliseconds(2 * 10 * 2000));  // the prompt is two tokens
  while (run.active()) run.turn();
  EXPECT_EQ(run.generations()[0].status.message(),
            "sequence 1: no reply within 44.0 s: every worker still answers, so a message was lost or rejected on "
            "the way");
}

TEST(GenerationRun, ADisconnectedWorkerFailsEverySequence) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4), request({kBos, 4}, 4)};
  p.script({});
  GenerationRun& run = p.make();
  run.start();
  p.links.lose(1, "the connection was closed");
  while (run.active()) run.turn();
  for (const Generation& g : run.generations()) {
    EXPECT_EQ(g.status.message(), "worker 2 'b' (tcp://b): the connection was closed");
  }
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kFreeSequence).size(), 2u);
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 0u) << "nothing goes to a lost worker";
}

TEST(GenerationRun, EveryWorkerHearsFromTheHeadEverySecond) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 8)};
  // Each step is answered 400 ms after it was sent: 8 tokens over 3.2 s.
  std::optional<Clock::time_point> due;
  p.links.on_send = [&](size_t, const wire::Envelope& e) {
    if (e.has_step()) due = p.now + milliseconds(400);
  };
  GenerationRun& run = p.make();
  run.start();
  while (run.active()) {
    run.turn();  // waiting for nothing moves the clock on
    if (due && p.now >= *due) {
      due.reset();
      p.links.reply(1, token_result(1, 4, 2));
    }
  }
  for (size_t w = 0; w < 2; ++w) {
    const auto alive = p.links.sent_to(w, wire::Envelope::kKeepAlive);
    ASSERT_EQ(alive.size(), 4u) << "worker " << w << ": at 0, 1, 2 and 3 s";
    EXPECT_EQ(alive[0].keep_alive().session(), kSession);
  }
}

// A controller that recovers from every loss at once: its new pipeline is the worker that is left.
class RecoveringController final : public cluster::RunController {
 public:
  bool take_message(GenerationRun&, size_t, const wire::Envelope&) override { return false; }
  void on_token(GenerationRun&, const wire::TokenResult&) override {}
  void tick(GenerationRun& run) override {
    if (!recovering_) return;
    recovering_ = false;
    run.set_stages({0});
    replayed_tokens = run.replay();
  }
  bool holding() const override { return recovering_; }
  void drained(GenerationRun&) override {}
  void lost(GenerationRun&, size_t) override {}
  bool recover(GenerationRun&, size_t worker) override {
    lost_workers.push_back(worker);
    recovering_ = true;
    return true;
  }
  void replayed(GenerationRun&, uint64_t sequence) override { replayed_sequences.push_back(sequence); }
  Clock::time_point next_wakeup(Clock::time_point now) const override { return now + milliseconds(10); }

  std::vector<size_t> lost_workers;
  std::vector<uint64_t> replayed_sequences;
  uint64_t replayed_tokens = 0;

 private:
  bool recovering_ = false;
};

TEST(GenerationRun, ARecoveredLossReplaysEverySequenceUnderANewIdAndLosesNoToken) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4), request({kBos, 4}, 4)};
  RecoveringController controller;
  std::map<uint64_t, std::deque<int32_t>> script = {{1, {4, 5}}, {2, {5}}};
  bool lost = false;
  p.links.on_send = [&](size_t w, const wire::Envelope& e) {
    if (!e.has_step() || lost) {
      if (e.has_step()) {
        // After the loss the last stage is worker 0; new ids 3 and 4 continue the old 1 and 2.
        const uint64_t seq = e.step().sequence();
        p.links.reply(0, token_result(seq, seq == 3 ? 3 : 4, 1));
      }
      return;
    }
    auto& next = script[e.step().sequence()];
    if (next.empty()) {
      lost = true;  // this step never comes back: worker 2 is gone
      p.links.lose(1, "the connection was closed");
      return;
    }
    p.links.reply(1, token_result(e.step().sequence(), next.front(), 2));
    next.pop_front();
    (void)w;
  };
  GenerationRun& run = p.make();
  run.set_controller(&controller);
  run.start();
  while (run.active()) run.turn();

  EXPECT_EQ(controller.lost_workers, std::vector<size_t>{1});
  const auto& g = run.generations();
  ASSERT_TRUE(g[0].status.ok()) << g[0].status.message();
  ASSERT_TRUE(g[1].status.ok()) << g[1].status.message();
  // Sequence 1 had 4 5 and its step of 5 was lost; sequence 2 had 5 and the step of 5 was lost.
  EXPECT_EQ(g[0].tokens, (std::vector<int32_t>{4, 5, 3, 3}));
  EXPECT_EQ(g[1].tokens, (std::vector<int32_t>{5, 4, 4, 4}));
  std::vector<wire::Step> replays;
  for (const auto& e : p.links.sent_to(0, wire::Envelope::kStep)) {
    if (e.step().sequence() > 2 && e.step().position() == 0) replays.push_back(e.step());
  }
  ASSERT_EQ(replays.size(), 2u);
  EXPECT_EQ(std::vector<int32_t>(replays[0].tokens().begin(), replays[0].tokens().end()),
            (std::vector<int32_t>{kBos, 3, 4, 5}));
  EXPECT_EQ(replays[0].samples_before(), 2u);
  EXPECT_TRUE(replays[0].has_sampler());
  EXPECT_EQ(std::vector<int32_t>(replays[1].tokens().begin(), replays[1].tokens().end()),
            (std::vector<int32_t>{kBos, 4, 5}));
  EXPECT_EQ(replays[1].samples_before(), 1u);
  EXPECT_EQ(controller.replayed_tokens, 7u);
  EXPECT_EQ(controller.replayed_sequences, (std::vector<uint64_t>{3, 4}));
  // The old ids are freed on the worker that is left; nothing goes to the lost one.
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kFreeSequence).size(), 2u);
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 0u);
}

std::vector<int32_t> tokens_of(const wire::Step& s) { return {s.tokens().begin(), s.tokens().end()}; }

TEST(GenerationRun, APromptInChunksIsSentWithoutWaitingAndAnsweredByItsLastChunk) {
  Pipeline p;
  p.prompt_chunk = 2;
  Request r = request({kBos, 3, 4, 5, 3}, 2);  // 5 tokens: chunks of 2, 2 and 1
  r.sampling.seed = 9;
  p.requests = {r};
  std::map<uint64_t, std::deque<int32_t>> script = {{1, {4, 5}}};
  size_t chunks_before_reply = 0;
  p.links.on_send = [&](size_t, const wire::Envelope& e) {
    if (!e.has_step()) return;
    if (e.step().prefill_only()) {
      ++chunks_before_reply;
      return;  // the last stage answers nothing
    }
    p.now += milliseconds(7);
    p.links.reply(1, token_result(1, script[1].front(), 2));
    script[1].pop_front();
  };
  const std::vector<Generation> out = p.make().run();
  ASSERT_TRUE(out[0].status.ok()) << out[0].status.message();
  EXPECT_EQ(out[0].tokens, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(out[0].prompt_chunk, 2);
  EXPECT_DOUBLE_EQ(out[0].prompt_seconds, 0.007);
  EXPECT_EQ(chunks_before_reply, 2u);
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  ASSERT_EQ(steps.size(), 4u) << "three chunks, then one decode step";
  const std::vector<std::vector<int32_t>> tokens = {{kBos, 3}, {4, 5}, {3}, {4}};
  const std::vector<uint32_t> positions = {0, 2, 4, 5};
  for (size_t i = 0; i < steps.size(); ++i) {
    const wire::Step& s = steps[i].step();
    EXPECT_EQ(tokens_of(s), tokens[i]) << i;
    EXPECT_EQ(s.position(), positions[i]) << i;
    EXPECT_EQ(s.prefill_only(), i < 2) << i;
    EXPECT_EQ(s.has_sampler(), i == 0) << i;
    EXPECT_EQ(s.end_sequence(), i == 3) << i;
  }
  EXPECT_EQ(steps[0].step().sampler().seed(), 9u);
  EXPECT_EQ(out[0].decode_steps, 1u) << "the prompt's chunks are one step to the head";
}

TEST(GenerationRun, AChunkSizeOfAtLeastThePromptSendsItInOneStep) {
  Pipeline p;
  p.prompt_chunk = 8;
  p.requests = {request({kBos, 3, 4}, 1)};
  p.script({{1, {5}}});
  const std::vector<Generation> out = p.make().run();
  ASSERT_TRUE(out[0].status.ok()) << out[0].status.message();
  EXPECT_EQ(out[0].prompt_chunk, 3);
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_FALSE(steps[0].step().prefill_only());
  EXPECT_TRUE(steps[0].step().end_sequence());
}

TEST(GenerationRun, WithoutAChunkSizeItIsChosenFromTheStageCostsAndWithoutThemTheWholePrompt) {
  for (const bool costs : {false, true}) {
    Pipeline p;
    // Two stages with no cost per chunk: one token at a time fills the pipeline soonest.
    if (costs) p.prompt_costs = {{.fixed_seconds = 0, .per_token_seconds = 1}, {.fixed_seconds = 0, .per_token_seconds = 1}};
    p.requests = {request({kBos, 3, 4, 5}, 1)};
    p.links.on_send = [&](size_t, const wire::Envelope& e) {
      if (e.has_step() && !e.step().prefill_only()) p.links.reply(1, token_result(1, 5, 2));
    };
    const std::vector<Generation> out = p.make().run();
    ASSERT_TRUE(out[0].status.ok()) << out[0].status.message();
    EXPECT_EQ(out[0].prompt_chunk, costs ? 1 : 4);
    EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kStep).size(), costs ? 4u : 1u);
  }
}

TEST(GenerationRun, AnErrorAboutAnyChunkEndsTheSequence) {
  Pipeline p;
  p.prompt_chunk = 1;
  p.requests = {request({kBos, 3, 4}, 2), request({kBos, 4}, 1)};
  p.links.on_send = [&](size_t, const wire::Envelope& e) {
    if (!e.has_step()) return;
    const wire::Step& s = e.step();
    if (s.sequence() == 1 && s.position() == 1) p.links.reply(1, error_reply(1, "worker w2: chunk refused"));
    if (!s.prefill_only()) p.links.reply(1, token_result(s.sequence(), 5, 2));  // sequence 1's comes too late
  };
  const std::vector<Generation> out = p.make().run();
  EXPECT_EQ(out[0].status.message(), "worker w2: chunk refused");
  EXPECT_TRUE(out[0].tokens.empty());
  ASSERT_TRUE(out[1].status.ok()) << out[1].status.message();
  EXPECT_EQ(out[1].tokens, (std::vector<int32_t>{5}));
}

TEST(GenerationRun, ARecoveryReplaysInChunksWithTheSamplerAndItsDrawsOnTheFirst) {
  Pipeline p;
  p.prompt_chunk = 3;
  p.requests = {request({kBos, 3}, 4)};
  RecoveringController controller;
  std::deque<int32_t> script = {4, 5};
  bool lost = false;
  p.links.on_send = [&](size_t, const wire::Envelope& e) {
    if (!e.has_step() || e.step().prefill_only()) return;
    if (lost) {
      p.links.reply(0, token_result(e.step().sequence(), 3, 1));
    } else if (script.empty()) {
      lost = true;
      p.links.lose(1, "the connection was closed");
    } else {
      p.links.reply(1, token_result(1, script.front(), 2));
      script.pop_front();
    }
  };
  GenerationRun& run = p.make();
  run.set_controller(&controller);
  run.start();
  while (run.active()) run.turn();
  const auto& g = run.generations();
  ASSERT_TRUE(g[0].status.ok()) << g[0].status.message();
  EXPECT_EQ(g[0].tokens, (std::vector<int32_t>{4, 5, 3, 3}));
  // kBos 3 4 5: a chunk of 3 (the sampler, 2 draws made before) and one of 1.
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  std::vector<wire::Step> of2;
  for (const auto& e : steps) {
    if (e.step().sequence() == 2) of2.push_back(e.step());
  }
  ASSERT_GE(of2.size(), 2u);
  EXPECT_EQ(tokens_of(of2[0]), (std::vector<int32_t>{kBos, 3, 4}));
  EXPECT_TRUE(of2[0].prefill_only());
  EXPECT_TRUE(of2[0].has_sampler());
  EXPECT_EQ(of2[0].samples_before(), 2u);
  EXPECT_EQ(tokens_of(of2[1]), (std::vector<int32_t>{5}));
  EXPECT_EQ(of2[1].position(), 3u);
  EXPECT_FALSE(of2[1].prefill_only());
  EXPECT_FALSE(of2[1].has_sampler());
  EXPECT_EQ(controller.replayed_tokens, 4u);
}

TEST(GenerationRun, AnErrorForOneSequenceEndsOnlyThatOne) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 2), request({kBos, 4}, 2)};
  p.script({{2, {5, 3}}});
  GenerationRun& run = p.make();
  run.start();
  p.links.reply(1, error_reply(1, "worker b: sequence 1: out of memory"));
  while (run.active()) run.turn();
  const std::vector<Generation>& out = run.generations();
  EXPECT_EQ(out[0].status.message(), "worker b: sequence 1: out of memory");
  EXPECT_TRUE(out[1].status.ok()) << out[1].status.message();
  EXPECT_EQ(out[1].tokens, (std::vector<int32_t>{5, 3}));
}

TEST(GenerationRun, AnErrorForNoSequenceEndsThemAll) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 2), request({kBos, 4}, 2)};
  p.script({});
  GenerationRun& run = p.make();
  run.start();
  p.links.reply(0, error_reply(0, "worker a: unknown session 77"));
  while (run.active()) run.turn();
  for (const Generation& g : run.generations()) EXPECT_EQ(g.status.message(), "worker a: unknown session 77");
}

struct BadResult {
  size_t from;
  wire::Envelope envelope;
  std::string message;
};

TEST(GenerationRun, RefusesInvalidTokenResults) {
  const std::vector<BadResult> cases = {
      {0, token_result(1, 4, 2), "worker 1 (tcp://a) sent an invalid token result (token 4, 2 stage timings)"},
      {1, token_result(1, 6, 2), "worker 2 'b' (tcp://b) sent an invalid token result (token 6, 2 stage timings)"},
      {1, token_result(1, -1, 2), "worker 2 'b' (tcp://b) sent an invalid token result (token -1, 2 stage timings)"},
      {1, token_result(1, 4, 1), "worker 2 'b' (tcp://b) sent an invalid token result (token 4, 1 stage timings)"},
  };
  for (const BadResult& c : cases) {
    Pipeline p;
    p.requests = {request({kBos, 3}, 4)};
    p.script({});
    GenerationRun& run = p.make();
    run.start();
    p.links.reply(c.from, c.envelope);
    while (run.active()) run.turn();
    EXPECT_EQ(run.generations()[0].status.message(), c.message);
    EXPECT_TRUE(run.generations()[0].tokens.empty());
    EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 1u);
  }
}

TEST(GenerationRun, IgnoresResultsOfOtherSessionsAndEndedSequences) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 1)};
  p.script({{1, {4}}});
  GenerationRun& run = p.make();
  run.start();
  p.links.reply(1, token_result(1, 5, 2, /*session=*/kSession + 1));
  p.links.reply(1, token_result(9, 5, 2));
  while (run.active()) run.turn();
  EXPECT_TRUE(run.generations()[0].status.ok());
  EXPECT_EQ(run.generations()[0].tokens, (std::vector<int32_t>{4}));
}

TEST(GenerationRun, EndsAtEndOfTextUnlessIgnoringIt) {
  for (int32_t end : {kEos, kBos}) {
    Pipeline p;
    p.requests = {request({kBos, 3}, 4)};
    p.script({{1, {4, end, 5}}});
    const std::vector<Generation> out = p.make().run();
    EXPECT_TRUE(out[0].status.ok());
    EXPECT_EQ(out[0].tokens, (std::vector<int32_t>{4})) << "end token " << end;
    EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 1u) << "its end was never sent";
  }
  Pipeline p;
  Request r = request({kBos, 3}, 3);
  r.ignore_eos = true;
  p.requests = {r};
  p.script({{1, {kEos, kBos, 4}}});
  const std::vector<Generation> out = p.make().run();
  EXPECT_TRUE(out[0].status.ok());
  EXPECT_EQ(out[0].tokens, (std::vector<int32_t>{kEos, kBos, 4}));
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 0u);
}

TEST(GenerationRun, EndsWhenTheContextIsFull) {
  Pipeline p;
  p.requests = {request({kBos, 3, 4, 5}, 100)};
  p.script({{1, {3, 4, 5, 3, 4}}});
  const std::vector<Generation> out = p.make(/*n_ctx=*/6).run();
  ASSERT_TRUE(out[0].status.ok()) << out[0].status.message();
  // Positions 0..3 hold the prompt, 4 and 5 the first two tokens; the third has no room.
  EXPECT_EQ(out[0].tokens, (std::vector<int32_t>{3, 4, 5}));
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[2].step().position(), 5u);
  EXPECT_TRUE(steps[2].step().end_sequence());
  EXPECT_FALSE(steps[1].step().end_sequence());
}

TEST(GenerationRun, NothingToPredictSendsNothing) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 0), request({}, 0)};
  const std::vector<Generation> out = p.make().run();
  for (const Generation& g : out) {
    EXPECT_TRUE(g.status.ok());
    EXPECT_TRUE(g.tokens.empty());
  }
  EXPECT_EQ(out[1].prompt_tokens, (std::vector<int32_t>{kBos})) << "an empty prompt is the start of text";
  EXPECT_TRUE(p.links.sent.empty());
}

TEST(GenerationRun, RefusesOutOfRangeSettingsAndSendsNothing) {
  Pipeline p;
  p.requests = {request({kBos, 3}, -3), request({kBos, 3}, 2)};
  p.requests[1].sampling.min_p = 2;
  const std::vector<Generation> out = p.make().run();
  EXPECT_EQ(out[0].status.message(),
            "n-predict -3 is below -2 (-1 = until the end of the text or context, -2 = until the context is full)");
  EXPECT_EQ(out[1].status.message(), "min-p 2 is outside 0..1 (0 = off)");
  EXPECT_TRUE(p.links.sent.empty());
}

TEST(GenerationRun, RefusesAPromptTheContextCannotHold) {
  Pipeline p;
  p.requests = {request({kBos, 3, 4, 5, 3, 4}, 4), request({kBos, 3}, 1)};
  p.script({{2, {4}}});
  const std::vector<Generation> out = p.make(/*n_ctx=*/6).run();
  EXPECT_EQ(out[0].status.message(), "the prompt has 6 tokens but the context holds 6");
  EXPECT_TRUE(out[1].status.ok());
  EXPECT_EQ(out[1].tokens, (std::vector<int32_t>{4}));
  for (const auto& e : p.links.sent_to(0, wire::Envelope::kStep)) EXPECT_EQ(e.step().sequence(), 2u);
}

Request scoring(std::vector<int32_t> tokens) {
  Request r;
  r.prompt_tokens = std::move(tokens);
  r.score = true;
  return r;
}

wire::Envelope score_result(uint64_t sequence, std::vector<float> log_probs, int timings = 2) {
  wire::Envelope e = token_result(sequence, -1, timings);
  for (float lp : log_probs) e.mutable_token()->add_log_probs(lp);
  return e;
}

TEST(GenerationRun, AScoredRequestIsOneStepThatEndsWithItsLogProbabilities) {
  Pipeline p;
  // A scored sequence may fill the context: nothing follows it.
  p.requests = {scoring({kBos, 3, 4, 5, 3, 4})};
  p.links.on_send = [&p](size_t, const wire::Envelope& e) {
    if (e.has_step()) p.links.reply(1, score_result(e.step().sequence(), {-0.5f, -1.25f, -2, -0.0f, -3}));
  };
  const std::vector<Generation> out = p.make(/*n_ctx=*/6).run();
  ASSERT_TRUE(out[0].status.ok()) << out[0].status.message();
  EXPECT_EQ(out[0].log_probs, (std::vector<float>{-0.5f, -1.25f, -2, -0.0f, -3}));
  EXPECT_TRUE(out[0].tokens.empty());
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_TRUE(steps[0].step().score());
  EXPECT_TRUE(steps[0].step().end_sequence()) << "the only step frees the sequence";
  EXPECT_EQ(steps[0].step().n_tokens(), 6u);
  EXPECT_EQ(steps[0].step().position(), 0u);
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 0u);
}

TEST(GenerationRun, RefusesScoresOfTheWrongCountOrSign) {
  const std::vector<BadResult> cases = {
      {1, score_result(1, {-1, -2}),
       "worker 2 'b' (tcp://b) sent an invalid score result (2 log-probabilities for 4 tokens, 2 stage timings)"},
      {0, score_result(1, {-1, -2, -3}),
       "worker 1 (tcp://a) sent an invalid score result (3 log-probabilities for 4 tokens, 2 stage timings)"},
      {1, score_result(1, {-1, -2, -3}, 1),
       "worker 2 'b' (tcp://b) sent an invalid score result (3 log-probabilities for 4 tokens, 1 stage timings)"},
      {1, score_result(1, {-1, 0.5f, -3}), "worker 2 'b' (tcp://b) sent a log-probability of 0.5 (must be <= 0)"},
      {1, score_result(1, {-1, std::nanf(""), -3}),
       "worker 2 'b' (tcp://b) sent a log-probability of nan (must be <= 0)"},
  };
  for (const BadResult& c : cases) {
    Pipeline p;
    p.requests = {scoring({kBos, 3, 4, 5})};
    GenerationRun& run = p.make();
    run.start();
    p.links.reply(c.from, c.envelope);
    while (run.active()) run.turn();
    EXPECT_EQ(run.generations()[0].status.message(), c.message);
    EXPECT_TRUE(run.generations()[0].log_probs.empty());
  }
}

TEST(GenerationRun, RefusesToScoreFewerThanTwoTokensOrMoreThanTheContext) {
  Pipeline p;
  p.requests = {scoring({kBos}), scoring({kBos, 3, 4, 5, 3, 4, 5})};
  const std::vector<Generation> out = p.make(/*n_ctx=*/6).run();
  EXPECT_EQ(out[0].status.message(), "scoring needs at least 2 tokens (each scores the next), got 1");
  EXPECT_EQ(out[1].status.message(), "the prompt has 7 tokens but the context holds 6");
  EXPECT_TRUE(p.links.sent.empty());
}

TEST(GenerationRun, TokenizesTextPrompts) {
  Pipeline p;
  Request r;
  r.prompt = "a b";
  r.n_predict = 1;
  p.requests = {r};
  p.script({{1, {5}}});
  const std::vector<Generation> out = p.make().run();
  EXPECT_EQ(out[0].prompt_tokens, (std::vector<int32_t>{kBos, 3, 4}));
  EXPECT_EQ(out[0].text, "c");
}

TEST(GenerationRun, CancellingEndsEverySequence) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 4)};
  p.script({});
  GenerationRun& run = p.make();
  run.start();
  p.cancel = true;
  run.turn();
  EXPECT_FALSE(run.active());
  EXPECT_EQ(run.generations()[0].status.message(), "interrupted");
}

// A run that stays open (a server): requests join between turns and end alone. Here the last
// worker answers only when the test says.
TEST(GenerationRun, ARequestAdmittedWhileOthersRunStartsAtOnceAndGetsItsOwnTokens) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 3)};
  GenerationRun& run = p.make();
  run.start();
  p.links.reply(1, token_result(1, 4, 2));
  run.turn();
  const size_t late = run.admit(request({kBos, 5}, 2));
  EXPECT_EQ(late, 1u);
  const auto steps = p.links.sent_to(0, wire::Envelope::kStep);
  EXPECT_EQ(steps.back().step().sequence(), 2u) << "the new prompt went out while the first sequence runs";
  EXPECT_EQ(tokens_of(steps.back().step()), (std::vector<int32_t>{kBos, 5}));
  EXPECT_FALSE(run.ended(0));
  p.links.reply(1, token_result(2, 5, 2));
  p.links.reply(1, token_result(1, 4, 2));
  p.links.reply(1, token_result(1, 3, 2));
  p.links.reply(1, token_result(2, 3, 2));
  while (run.active()) run.turn();
  const Generation first = run.release(0);
  const Generation second = run.release(late);
  ASSERT_TRUE(first.status.ok()) << first.status.message();
  ASSERT_TRUE(second.status.ok()) << second.status.message();
  EXPECT_EQ(first.tokens, (std::vector<int32_t>{4, 4, 3}));
  EXPECT_EQ(second.tokens, (std::vector<int32_t>{5, 3}));
  EXPECT_EQ(p.streamed[1], "c a");
  // A released index (the last one) is given to the next request, under a new sequence id.
  const size_t reused = run.admit(request({kBos, 3}, 1));
  EXPECT_EQ(reused, late);
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kStep).back().step().sequence(), 3u);
  p.links.reply(1, token_result(3, 5, 2));
  while (run.active()) run.turn();
  const Generation third = run.release(reused);
  EXPECT_EQ(third.tokens, (std::vector<int32_t>{5}));
  EXPECT_EQ(third.prompt_tokens, (std::vector<int32_t>{kBos, 3}));
}

TEST(GenerationRun, ACancelledRequestEndsAloneAndItsSequenceIsFreedOnEveryWorkerOnceItsStepIsBack) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 6), request({kBos, 4}, 3)};
  GenerationRun& run = p.make();
  run.start();
  p.links.reply(1, token_result(1, 4, 2));
  p.links.reply(1, token_result(2, 5, 2));
  run.turn();
  run.cancel(0);
  EXPECT_TRUE(run.ended(0));
  EXPECT_FALSE(run.ended(1));
  EXPECT_TRUE(p.links.sent_to(0, wire::Envelope::kFreeSequence).empty())
      << "not while its step is on the way: the FreeSequence could overtake it";
  p.links.reply(1, token_result(1, 4, 2));  // the step in flight when cancelled comes back
  run.turn();
  for (size_t w = 0; w < 2; ++w) {
    const auto freed = p.links.sent_to(w, wire::Envelope::kFreeSequence);
    ASSERT_EQ(freed.size(), 1u) << "worker " << w;
    EXPECT_EQ(freed[0].free_sequence().sequence(), 1u);
    EXPECT_EQ(freed[0].free_sequence().session(), kSession);
  }
  p.links.reply(1, token_result(2, 5, 2));
  p.links.reply(1, token_result(2, 3, 2));
  while (run.active()) run.turn();
  const Generation cancelled = run.release(0);
  EXPECT_TRUE(cancelled.status.ok()) << "a cancelled request keeps its text and is no error";
  EXPECT_EQ(cancelled.tokens, (std::vector<int32_t>{4}));
  const Generation other = run.release(1);
  ASSERT_TRUE(other.status.ok()) << other.status.message();
  EXPECT_EQ(other.tokens, (std::vector<int32_t>{5, 5, 3}));
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kFreeSequence).size(), 1u) << "a finished sequence frees itself";
}

TEST(GenerationRun, ACancelledSequenceWhoseStepNeverComesBackIsFreedAtItsDeadline) {
  Pipeline p;
  p.requests = {request({kBos, 3}, 6)};
  GenerationRun& run = p.make();
  run.start();
  const Clock::time_point sent = p.now;
  run.cancel(0);
  EXPECT_TRUE(run.active()) << "until the step is back or overdue";
  while (run.active()) run.turn();
  EXPECT_GE(p.now - sent, milliseconds(3000));
  EXPECT_EQ(p.links.sent_to(0, wire::Envelope::kFreeSequence).size(), 1u);
  EXPECT_EQ(p.links.sent_to(1, wire::Envelope::kFreeSequence).size(), 1u);
  EXPECT_TRUE(p.links.sent_to(0, wire::Envelope::kHello).empty()) << "a cancelled step is nobody's fault: no probe";
}

// Holds every step while `hold` is set; recovers nothing.
class HoldingController final : public cluster::RunController {
 public:
  bool hold = false;
  bool take_message(GenerationRun&, size_t, const wire::Envelope&) override { return false; }
  void on_token(GenerationRun&, const wire::TokenResult&) override {}
  void tick(GenerationRun&) override {}
  bool holding() const override { return hold; }
  void drained(GenerationRun&) override {}
  void lost(GenerationRun&, size_t) override {}
  bool recover(GenerationRun&, size_t) override { return false; }
  void replayed(GenerationRun&, uint64_t) override {}
  Clock::time_point next_wakeup(Clock::time_point now) const override { return now + milliseconds(100); }
};

TEST(GenerationRun, ARequestAdmittedWhileTheControllerHoldsWaitsForIt) {
  Pipeline p;
  p.script({{1, {4, 5}}});
  HoldingController controller;
  GenerationRun& run = p.make();
  run.set_controller(&controller);
  run.start();
  controller.hold = true;
  const size_t i = run.admit(request({kBos, 3}, 2));
  EXPECT_TRUE(run.active());
  run.turn();
  EXPECT_TRUE(p.links.sent_to(0, wire::Envelope::kStep).empty()) << "no prompt while the pipeline may change";
  controller.hold = false;
  while (run.active()) run.turn();
  const Generation g = run.release(i);
  ASSERT_TRUE(g.status.ok()) << g.status.message();
  EXPECT_EQ(g.tokens, (std::vector<int32_t>{4, 5}));
}

TEST(GenerationRun, ParallelRequestsShareThePromptWithConsecutiveSeeds) {
  text::SamplerParams sampling;
  sampling.temp = 0.5f;
  sampling.top_k = 7;
  sampling.seed = 41;
  const std::vector<Request> requests = cluster::parallel_requests("Once upon a time", 20, sampling, 3);
  ASSERT_EQ(requests.size(), 3u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].prompt, "Once upon a time");
    EXPECT_TRUE(requests[i].prompt_tokens.empty());
    EXPECT_EQ(requests[i].n_predict, 20);
    EXPECT_FALSE(requests[i].ignore_eos);
    EXPECT_EQ(requests[i].sampling.temp, 0.5f);
    EXPECT_EQ(requests[i].sampling.top_k, 7);
    EXPECT_EQ(requests[i].sampling.seed, 41u + i);
  }
  EXPECT_TRUE(cluster::parallel_requests("x", 1, sampling, 0).empty());
}

}  // namespace
}  // namespace ll
