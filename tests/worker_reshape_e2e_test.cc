// Re-planning a live session on real workers: the test plays the head by hand (LoadSegment,
// Steps, Reshape, SendKv, SwitchSegment) on workers running in threads of this process over
// loopback TCP with CURVE. Boundaries move inside a layer and between layers, a worker joins
// and one leaves, the last stage (and its sampler) moves: the sampled tokens equal those of one
// device that never moved anything.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <thread>

#include "cluster/sampler_wire.h"
#include "cluster/worker.h"
#include "exec/segment_executor.h"
#include "model/model.h"
#include "net/keys.h"
#include "net/transport.h"
#include "test_data.h"
#include "text/sampler.h"
#include "wire.pb.h"

namespace ll {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");
constexpr uint32_t kUnits = 12;  // stories260K: embed · attn[0] ffn[0] · ... · attn[4] ffn[4] · head
constexpr uint32_t kCtx = 64;
constexpr uint64_t kSession = 1, kSeq = 5;
const text::SamplerParams kParams{.temp = 0.9f, .top_k = 0, .top_p = 0.95f, .min_p = 0.0f,
                                  .repeat_penalty = 1.2f, .repeat_last_n = 6, .seed = 1234};
const std::vector<int32_t> kPrompt = {1, 403, 407};

class RunningWorker {
 public:
  explicit RunningWorker(const std::string& head_key, size_t max_sessions = 4,
                         std::chrono::milliseconds session_lease = std::chrono::seconds(30)) {
    cluster::WorkerOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.threads = 1;
    o.security.keys = net::generate_keypair();
    o.security.allowed = {head_key};
    o.cache_dir = test::temp_path("reshape-cache");
    o.model_dirs = {test::shared_data("models")};
    o.max_sessions = max_sessions;
    o.session_lease = session_lease;
    auto w = cluster::Worker::create(std::move(o));
    EXPECT_TRUE(w.ok()) << w.error();
    if (!w.ok()) return;
    worker_ = std::move(w).value();
    thread_ = std::thread([this] { EXPECT_TRUE(worker_->serve(stop_).ok()); });
  }
  ~RunningWorker() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  const std::string& endpoint() const { return worker_->endpoint(); }
  const std::string& key() const { return worker_->public_key(); }

 private:
  std::unique_ptr<cluster::Worker> worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string describe(const std::optional<wire::Envelope>& e) { return e ? e->ShortDebugString() : "no reply"; }

// One key's connection to one worker.
class Connection {
 public:
  Connection(const RunningWorker& w, const net::KeyPair& keys) {
    net::SecurityOptions sec;
    sec.keys = keys;
    auto c = net::Client::connect(w.endpoint(), w.key(), sec);
    EXPECT_TRUE(c.ok()) << c.error();
    if (c.ok()) client_ = std::move(c).value();
  }
  bool send(const wire::Envelope& e, std::vector<zmq::message_t> frames = {}) {
    return client_ && client_->send(e, std::move(frames)).ok();
  }
  // The next message, or nullopt after 5 s.
  std::optional<wire::Envelope> next() {
    return next_where([](const wire::Envelope&) { return true; });
  }
  // The next message that `wanted` (or is an error), the others kept for later; nullopt after 5 s.
  std::optional<wire::Envelope> next_where(const std::function<bool(const wire::Envelope&)>& wanted) {
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (wanted(*it) || it->has_error()) {
        wire::Envelope e = *it;
        kept_.erase(it);
        return e;
      }
    }
    const auto deadline = Clock::now() + 5s;
    while (client_ && Clock::now() < deadline) {
      auto r = client_->receive(50ms);
      if (!r.ok() || !r.value()) continue;
      const wire::Envelope& e = r.value()->envelope();
      if (wanted(e) || e.has_error()) return e;
      kept_.push_back(e);
    }
    return std::nullopt;
  }
  std::optional<wire::Envelope> ask(const wire::Envelope& e) { return send(e) ? next() : std::nullopt; }

 private:
  std::unique_ptr<net::Client> client_;
  std::vector<wire::Envelope> kept_;
};

struct Stage {
  RunningWorker* worker;
  uint32_t begin, end;
};

wire::Envelope load_envelope(const Stage& s, const Stage* next, const Stage* previous) {
  wire::Envelope e;
  wire::LoadSegment* l = e.mutable_load_segment();
  l->set_session(kSession);
  l->set_model_path(kStories);
  l->set_unit_begin(s.begin);
  l->set_unit_end(s.end);
  l->set_n_ctx(kCtx);
  if (next != nullptr) {
    l->set_next_endpoint(next->worker->endpoint());
    l->set_next_public_key(next->worker->key());
  }
  if (previous != nullptr) l->add_allow_keys(previous->worker->key());
  return e;
}

wire::Envelope reshape_envelope(uint32_t begin, uint32_t end, const RunningWorker* next,
                                std::vector<const RunningWorker*> allowed) {
  wire::Envelope e;
  e.set_request_id(20);
  wire::Reshape* r = e.mutable_reshape();
  r->set_session(kSession);
  r->set_model_path(kStories);
  r->set_unit_begin(begin);
  r->set_unit_end(end);
  r->set_n_ctx(kCtx);
  if (next != nullptr) {
    r->set_next_endpoint(next->endpoint());
    r->set_next_public_key(next->key());
  }
  for (const RunningWorker* w : allowed) r->add_allow_keys(w->key());
  return e;
}

wire::Envelope send_kv_envelope(uint32_t begin, uint32_t end, const RunningWorker& to) {
  wire::Envelope e;
  e.set_request_id(21);
  wire::SendKv* s = e.mutable_send_kv();
  s->set_session(kSession);
  s->set_unit_begin(begin);
  s->set_unit_end(end);
  s->set_to_endpoint(to.endpoint());
  s->set_to_public_key(to.key());
  return e;
}

wire::Envelope switch_envelope(bool abort = false) {
  wire::Envelope e;
  e.set_request_id(22);
  e.mutable_switch_segment()->set_session(kSession);
  e.mutable_switch_segment()->set_abort(abort);
  return e;
}

bool is_error_with(const std::optional<wire::Envelope>& e, const std::string& fragment) {
  return e && e->has_error() && e->error().message().find(fragment) != std::string::npos;
}

// The tokens one device samples for kPrompt: what every moved pipeline must give.
std::vector<int32_t> reference_tokens(int n) {
  auto m = model::Model::load(kStories);
  EXPECT_TRUE(m.ok()) << m.error();
  exec::SegmentExecutor ex(*m.value(), model::all_units(m.value()->hparams()), {.n_ctx = kCtx, .n_threads = 1});
  EXPECT_TRUE(ex.create_sequence(kSeq).ok());
  text::Sampler sampler(kParams, static_cast<int32_t>(ex.n_vocab()));
  std::vector<float> hidden(kPrompt.size() * ex.n_embd()), logits(ex.n_vocab());
  std::vector<int32_t> tokens = kPrompt, out;
  int64_t pos = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(ex.forward(kSeq, pos, tokens, hidden.data(), static_cast<int64_t>(tokens.size()), logits.data()).ok());
    pos += static_cast<int64_t>(tokens.size());
    for (int32_t t : tokens) sampler.accept(t);
    tokens = {sampler.sample(logits.data())};
    out.push_back(tokens[0]);
  }
  return out;
}

// The head's side: a connection to every worker, the current pipeline, the sequence's progress.
class HandHead {
 public:
  HandHead(const net::KeyPair& keys, std::vector<RunningWorker*> workers) {
    for (RunningWorker* w : workers) links_[w] = std::make_unique<Connection>(*w, keys);
  }
  Connection& to(const RunningWorker* w) { return *links_.at(w); }

  void load(std::vector<Stage> stages) {
    stages_ = stages;
    // From the last to the first, so that each worker allows its upstream before it connects.
    for (size_t i = stages.size(); i-- > 0;) {
      auto r = to(stages[i].worker)
                   .ask(load_envelope(stages[i], i + 1 < stages.size() ? &stages[i + 1] : nullptr,
                                      i > 0 ? &stages[i - 1] : nullptr));
      ASSERT_TRUE(r && r->has_load_reply()) << describe(r);
    }
  }

  // One step of the sequence through the pipeline; the sampled token is appended.
  void step() {
    wire::Envelope e;
    wire::Step* s = e.mutable_step();
    s->set_session(kSession);
    s->set_sequence(kSeq);
    s->set_position(position_);
    const std::vector<int32_t> in = tokens_.empty() ? kPrompt : std::vector<int32_t>{tokens_.back()};
    s->set_n_tokens(static_cast<uint32_t>(in.size()));
    for (int32_t t : in) s->add_tokens(t);
    cluster::sampler_to_wire(kParams, s->mutable_sampler());
    ASSERT_TRUE(to(stages_.front().worker).send(e));
    auto r = to(stages_.back().worker).next_where([](const wire::Envelope& e) { return e.has_token(); });
    ASSERT_TRUE(r && r->has_token()) << describe(r);
    ASSERT_EQ(r->token().sequence(), kSeq);
    ASSERT_EQ(r->token().timings_size(), static_cast<int>(stages_.size()));
    tokens_.push_back(r->token().token());
    position_ += static_cast<uint32_t>(in.size());
  }

  // Reshape every worker (an empty range for those that leave), move the state, switch all.
  struct Move {
    uint32_t begin, end;
    RunningWorker* from;
    RunningWorker* to;
  };
  // `steps_while_preparing` steps run on the old pipeline between the Reshapes and their replies.
  void rebalance(const std::vector<Stage>& next, const std::vector<RunningWorker*>& leaving, const std::vector<Move>& moves,
                 int steps_while_preparing = 0) {
    for (size_t i = next.size(); i-- > 0;) {  // last to first, as loads
      std::vector<const RunningWorker*> allowed;
      if (i > 0) allowed.push_back(next[i - 1].worker);
      for (const Move& m : moves) {
        if (m.to == next[i].worker) allowed.push_back(m.from);
      }
      ASSERT_TRUE(to(next[i].worker)
                      .send(reshape_envelope(next[i].begin, next[i].end,
                                             i + 1 < next.size() ? next[i + 1].worker : nullptr, allowed)));
    }
    for (int i = 0; i < steps_while_preparing; ++i) ASSERT_NO_FATAL_FAILURE(step());
    for (const Stage& s : next) {
      auto r = to(s.worker).next_where([](const wire::Envelope& e) { return e.has_reshape_reply(); });
      ASSERT_TRUE(r && r->has_reshape_reply() && r->reshape_reply().session() == kSession) << describe(r);
      EXPECT_GT(r->reshape_reply().weight_bytes(), 0u);
    }
    for (RunningWorker* w : leaving) {
      auto r = to(w).ask(reshape_envelope(0, 0, nullptr, {}));
      ASSERT_TRUE(r && r->has_reshape_reply() && r->reshape_reply().weight_bytes() == 0) << describe(r);
    }
    for (const Move& m : moves) {
      ASSERT_TRUE(to(m.from).send(send_kv_envelope(m.begin, m.end, *m.to)));
      auto r = to(m.to).next();
      ASSERT_TRUE(r && r->has_kv_received()) << describe(r);
      EXPECT_EQ(r->kv_received().from_key(), m.from->key());
      EXPECT_GT(r->kv_received().units(), 0u);
    }
    std::vector<RunningWorker*> all = leaving;
    for (const Stage& s : next) all.push_back(s.worker);
    for (RunningWorker* w : all) {
      auto r = to(w).ask(switch_envelope());
      ASSERT_TRUE(r && r->has_switch_reply() && !r->switch_reply().aborted()) << describe(r);
    }
    stages_ = next;
  }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::map<const RunningWorker*, std::unique_ptr<Connection>> links_;
  std::vector<Stage> stages_;
  std::vector<int32_t> tokens_;
  uint32_t position_ = 0;
};

TEST(WorkerReshape, BoundaryMovesInsideALayerAndBetweenLayersKeepTheTokens) {
  const net::KeyPair head = net::generate_keypair();
  RunningWorker a(head.public_key), b(head.public_key);
  HandHead h(head, {&a, &b});
  ASSERT_NO_FATAL_FAILURE(h.load({{&a, 0, 5}, {&b, 5, kUnits}}));
  for (int i = 0; i < 6; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  // attn[1] stays on a, ffn[1] (no state) goes to b: a cut inside layer 1.
  // Steps go on on the old segments while the new ones are prepared.
  ASSERT_NO_FATAL_FAILURE(h.rebalance({{&a, 0, 4}, {&b, 4, kUnits}}, {}, {{4, 5, &a, &b}}, /*steps_while_preparing=*/2));
  for (int i = 0; i < 4; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  // ffn[1] .. attn[3] go to a, attn[2] and attn[3] with their KV: a cut inside layer 3.
  ASSERT_NO_FATAL_FAILURE(h.rebalance({{&a, 0, 8}, {&b, 8, kUnits}}, {}, {{4, 8, &b, &a}}));
  for (int i = 0; i < 6; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  // ffn[3] follows: a cut between layers 3 and 4.
  ASSERT_NO_FATAL_FAILURE(h.rebalance({{&a, 0, 9}, {&b, 9, kUnits}}, {}, {{8, 9, &b, &a}}));
  for (int i = 0; i < 6; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  EXPECT_EQ(h.tokens(), reference_tokens(24));
}

TEST(WorkerReshape, AWorkerJoinsWithTheLastStageAndAnotherLeaves) {
  const net::KeyPair head = net::generate_keypair();
  RunningWorker a(head.public_key), b(head.public_key), c(head.public_key);
  HandHead h(head, {&a, &b, &c});
  ASSERT_NO_FATAL_FAILURE(h.load({{&a, 0, 4}, {&b, 4, kUnits}}));
  for (int i = 0; i < 8; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  // b leaves: units 4..6 (ffn[1], attn[2], ffn[2]) go to a, 7..11 (attn[3] .. head, with the
  // sampler) to c, which did not hold the session.
  ASSERT_NO_FATAL_FAILURE(h.rebalance({{&a, 0, 7}, {&c, 7, kUnits}}, {&b}, {{4, 7, &b, &a}, {7, kUnits, &b, &c}}));
  for (int i = 0; i < 8; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  // The leaver no longer holds the session.
  auto gone = h.to(&b).ask(send_kv_envelope(4, 7, a));
  EXPECT_TRUE(is_error_with(gone, "unknown session 1")) << describe(gone);
  // b joins again in the middle.
  ASSERT_NO_FATAL_FAILURE(
      h.rebalance({{&a, 0, 3}, {&b, 3, 10}, {&c, 10, kUnits}}, {}, {{3, 7, &a, &b}, {7, 10, &c, &b}}));
  for (int i = 0; i < 8; ++i) ASSERT_NO_FATAL_FAILURE(h.step());
  EXPECT_EQ(h.tokens(), reference_tokens(24));
}

TEST(WorkerReshape, RefusalsNameWhatIsWrong) {
  const net::KeyPair head = net::generate_keypair();
  RunningWorker a(head.public_key, 1), b(head.public_key);
  HandHead h(head, {&a, &b});
  ASSERT_NO_FATAL_FAILURE(h.load({{&a, 0, 5}, {&b, 5, kUnits}}));
  ASSERT_NO_FATAL_FAILURE(h.step());

  auto r = h.to(&a).ask(switch_envelope());
  EXPECT_TRUE(is_error_with(r, "nothing is prepared for session 1")) << describe(r);
  r = h.to(&a).ask(switch_envelope(/*abort=*/true));
  EXPECT_TRUE(r && r->has_switch_reply() && r->switch_reply().aborted()) << describe(r);
  // Units a does not run.
  r = h.to(&a).ask(send_kv_envelope(5, 7, b));
  EXPECT_TRUE(is_error_with(r, "but this worker runs units 0..4")) << describe(r);
  // A session it does not hold, on a worker with room for one session only.
  wire::Envelope other = reshape_envelope(0, 5, nullptr, {});
  other.mutable_reshape()->set_session(2);
  r = h.to(&a).ask(other);
  EXPECT_TRUE(is_error_with(r, "worker busy: at most 1 sessions fit")) << describe(r);

  // KV data only from the keys of the pending Reshape: a key it named may send, and loses that
  // right when a second Reshape names others (its open connection stays, each message is refused).
  const net::KeyPair sender = net::generate_keypair();
  r = h.to(&b).ask(reshape_envelope(5, kUnits, nullptr, {}));
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  wire::Envelope named = reshape_envelope(5, kUnits, nullptr, {});
  named.mutable_reshape()->add_allow_keys(sender.public_key);
  r = h.to(&b).ask(named);
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  Connection from_sender(b, sender);
  wire::Envelope done;
  done.mutable_kv_data()->set_session(kSession);
  done.mutable_kv_data()->set_last(true);
  ASSERT_TRUE(from_sender.send(done));
  r = h.to(&b).next();
  ASSERT_TRUE(r && r->has_kv_received() && r->kv_received().from_key() == sender.public_key) << describe(r);
  r = h.to(&b).ask(reshape_envelope(5, kUnits, nullptr, {}));
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  r = from_sender.ask(done);
  EXPECT_TRUE(is_error_with(r, "may not send KV data of session 1")) << describe(r);
  // KvData for units the prepared segment does not hold goes to the head as an error.
  wire::Envelope kv;
  kv.mutable_kv_data()->set_session(kSession);
  kv.mutable_kv_data()->set_sequence(kSeq);
  kv.mutable_kv_data()->set_unit(1);
  kv.mutable_kv_data()->set_length(4);
  r = h.to(&b).ask(kv);
  EXPECT_TRUE(is_error_with(r, "KvData for unit 1, which the prepared segment (units 5..11")) << describe(r);
  // A switch that would run a unit without its state is refused; the prepared segment stays.
  r = h.to(&b).ask(reshape_envelope(3, kUnits, nullptr, {}));
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  r = h.to(&b).ask(switch_envelope());
  EXPECT_TRUE(is_error_with(r, "sequence 5 has no state for unit 3 (attn[1])")) << describe(r);
  r = h.to(&b).ask(switch_envelope(/*abort=*/true));
  EXPECT_TRUE(r && r->has_switch_reply() && r->switch_reply().aborted()) << describe(r);
  // The session runs on as before.
  ASSERT_NO_FATAL_FAILURE(h.step());

  wire::Envelope probe;
  probe.mutable_speed_probe()->set_repetitions(5);
  r = h.to(&a).ask(probe);
  ASSERT_TRUE(r && r->has_speed_probe_reply()) << describe(r);
  EXPECT_GT(r->speed_probe_reply().seconds(), 0.0);
  EXPECT_LT(r->speed_probe_reply().seconds(), 1.0);
  probe.mutable_speed_probe()->set_repetitions(0);
  r = h.to(&a).ask(probe);
  EXPECT_TRUE(is_error_with(r, "speed probe of 0 repetitions is outside 1..100")) << describe(r);
}

// The head frees a sequence on every worker over its own links, so on the worker after a lost one
// the free can overtake that sequence's prompt, still on its way from the previous worker. The late
// step must not bring the sequence back: it would hold a slot for good, and a recovery's switch
// would find it without the state of the units it takes over.
TEST(WorkerReshape, AStepArrivingAfterItsSequenceWasFreedIsDropped) {
  const net::KeyPair head = net::generate_keypair();
  RunningWorker a(head.public_key), b(head.public_key);
  HandHead h(head, {&a, &b});
  ASSERT_NO_FATAL_FAILURE(h.load({{&a, 0, 5}, {&b, 5, kUnits}}));
  constexpr uint64_t kFreed = 9;
  wire::Envelope free;
  free.mutable_free_sequence()->set_session(kSession);
  free.mutable_free_sequence()->set_sequence(kFreed);
  ASSERT_TRUE(h.to(&b).send(free));  // b only: a has not seen it yet
  wire::Envelope late;
  wire::Step* s = late.mutable_step();
  s->set_session(kSession);
  s->set_sequence(kFreed);
  s->set_n_tokens(static_cast<uint32_t>(kPrompt.size()));
  for (int32_t t : kPrompt) s->add_tokens(t);
  cluster::sampler_to_wire(kParams, s->mutable_sampler());
  ASSERT_TRUE(h.to(&a).send(late));
  ASSERT_TRUE(h.to(&a).send(free));  // a frees it once it has passed the step on
  // The links keep their order, so the next sequence's token comes first only if b dropped the late step.
  ASSERT_NO_FATAL_FAILURE(h.step());
  // b holds only kSeq: a segment reaching back into a's units switches with kSeq's state alone.
  ASSERT_TRUE(h.to(&b).send(reshape_envelope(3, kUnits, nullptr, {&a})));
  auto r = h.to(&b).next_where([](const wire::Envelope& e) { return e.has_reshape_reply(); });
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  ASSERT_TRUE(h.to(&a).send(send_kv_envelope(3, 5, b)));
  r = h.to(&b).next();
  ASSERT_TRUE(r && r->has_kv_received()) << describe(r);
  r = h.to(&b).ask(switch_envelope());
  EXPECT_TRUE(r && r->has_switch_reply() && !r->switch_reply().aborted()) << describe(r);
}

// A worker that holds no session of a head yet (it was joining) keeps what that head prepared on
// it only while the head keeps it alive: a head that died leaves nothing behind after the lease.
TEST(WorkerReshape, WhatAJoiningWorkerPreparedIsDroppedWhenItsHeadFallsSilent) {
  const net::KeyPair head = net::generate_keypair();
  RunningWorker w(head.public_key, 4, std::chrono::milliseconds(300));
  Connection c(w, head);
  auto r = c.ask(reshape_envelope(0, kUnits, nullptr, {}));
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  std::this_thread::sleep_for(700ms);  // silent past the lease
  r = c.ask(switch_envelope());
  EXPECT_TRUE(is_error_with(r, "nothing is prepared for session 1")) << describe(r);

  r = c.ask(reshape_envelope(0, kUnits, nullptr, {}));
  ASSERT_TRUE(r && r->has_reshape_reply()) << describe(r);
  wire::Envelope alive;
  alive.mutable_keep_alive()->set_session(kSession);
  for (int i = 0; i < 5; ++i) {  // 700 ms, kept alive every 140 ms
    std::this_thread::sleep_for(140ms);
    ASSERT_TRUE(c.send(alive));
  }
  r = c.ask(switch_envelope());
  EXPECT_TRUE(r && r->has_switch_reply() && !r->switch_reply().aborted()) << describe(r);
}

}  // namespace
}  // namespace ll
