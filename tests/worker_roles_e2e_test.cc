// Key roles on a worker: only the owner's allowed keys command it; peers a head introduces may
// only deliver the steps of their session (or link probes) until it ends; sessions of live heads
// are never taken by another head. Workers run in threads of this process on loopback TCP.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "cluster/head.h"
#include "cluster/sampler_wire.h"
#include "cluster/worker.h"
#include "graph/graph.h"
#include "model/model.h"
#include "net/keys.h"
#include "net/transport.h"
#include "test_data.h"
#include "wire.pb.h"

namespace ll {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

class RunningWorker {
 public:
  RunningWorker(std::set<std::string> allowed, size_t max_sessions = 4,
                std::chrono::milliseconds lease = std::chrono::milliseconds(30000)) {
    cluster::WorkerOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.name = "w";
    o.threads = 1;
    o.security.keys = net::generate_keypair();
    o.security.allowed = std::move(allowed);
    o.cache_dir = test::temp_path("roles-cache");
    o.model_dirs = {test::shared_data("models")};
    o.max_sessions = max_sessions;
    o.session_lease = lease;
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
  bool ok() const { return worker_ != nullptr; }
  cluster::WorkerAddress address() const { return {worker_->endpoint(), worker_->public_key()}; }

 private:
  std::unique_ptr<cluster::Worker> worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A connection to the worker with a given key pair, sending envelopes and reading replies.
class Connection {
 public:
  Connection(const RunningWorker& w, const net::KeyPair& keys) {
    net::SecurityOptions sec;
    sec.keys = keys;
    auto c = net::Client::connect(w.address().endpoint, w.address().public_key, sec);
    EXPECT_TRUE(c.ok()) << c.error();
    if (c.ok()) client_ = std::move(c).value();
  }
  // The reply to `e`, or nullopt after 5 s.
  std::optional<wire::Envelope> ask(const wire::Envelope& e, std::vector<zmq::message_t> frames = {}) {
    if (!client_ || !client_->send(e, std::move(frames)).ok()) return std::nullopt;
    return next();
  }
  // The next message, or nullopt after 5 s.
  std::optional<wire::Envelope> next() {
    if (!client_) return std::nullopt;
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline && !client_->disconnected()) {
      auto r = client_->receive(100ms);
      if (r.ok() && r.value()) return r.value()->envelope();
    }
    return std::nullopt;
  }
  bool send(const wire::Envelope& e) { return client_ && client_->send(e).ok(); }
  // True once the worker has refused this key's handshake (within 3 s).
  bool refused() {
    wire::Envelope ping;
    ping.mutable_ping();
    if (!client_ || !client_->send(ping).ok()) return false;
    const auto deadline = Clock::now() + 3s;
    while (Clock::now() < deadline) {
      if (client_->disconnected()) return true;
      auto r = client_->receive(100ms);
      if (r.ok() && r.value()) return false;  // answered: the handshake passed
    }
    return false;
  }

 private:
  std::unique_ptr<net::Client> client_;
};

int64_t unit_count() {
  auto m = model::Model::load(kStories);
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? static_cast<int64_t>(graph::build_graph(*m.value()).units.size()) : 0;
}

wire::Envelope load_envelope(uint64_t session, std::vector<std::string> allow_keys = {}) {
  wire::Envelope e;
  e.set_request_id(1);
  wire::LoadSegment* l = e.mutable_load_segment();
  l->set_session(session);
  l->set_model_path(kStories);
  l->set_unit_begin(0);
  l->set_unit_end(static_cast<uint32_t>(unit_count()));
  l->set_n_ctx(64);
  for (auto& k : allow_keys) l->add_allow_keys(k);
  return e;
}

wire::Envelope step_envelope(uint64_t session, uint64_t seq) {
  wire::Envelope e;
  e.set_request_id(7);
  wire::Step* s = e.mutable_step();
  s->set_session(session);
  s->set_sequence(seq);
  s->set_position(0);
  s->set_n_tokens(1);
  s->add_tokens(1);  // BOS; the reference's first token is then 403 ("Once")
  cluster::sampler_to_wire(text::SamplerParams{.temp = 0}, s->mutable_sampler());
  return e;
}

wire::Envelope end_session_envelope(uint64_t session) {
  wire::Envelope e;
  e.set_request_id(9);
  e.mutable_end_session()->set_session(session);
  return e;
}

std::string describe(const std::optional<wire::Envelope>& e) { return e ? e->DebugString() : "no reply"; }

bool is_token(const std::optional<wire::Envelope>& e) { return e && e->has_token() && e->token().token() == 403; }

bool is_error_with(const std::optional<wire::Envelope>& e, const std::string& fragment) {
  return e && e->has_error() && e->error().message().find(fragment) != std::string::npos;
}

TEST(WorkerRoles, PeersMayOnlySendWhatTheyWereIntroducedFor) {
  const net::KeyPair head = net::generate_keypair(), step_peer = net::generate_keypair(),
                     probe_peer = net::generate_keypair(), stranger = net::generate_keypair();
  RunningWorker w({head.public_key});
  ASSERT_TRUE(w.ok());
  Connection h(w, head);
  wire::Envelope hello;
  hello.mutable_hello()->add_peer_keys(probe_peer.public_key);
  auto hello_reply = h.ask(hello);
  ASSERT_TRUE(hello_reply && hello_reply->has_hello_reply()) << describe(hello_reply);
  auto loaded = h.ask(load_envelope(1, {step_peer.public_key}));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
  loaded = h.ask(load_envelope(2));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);

  // A peer's step is computed; the token goes to the session's head.
  Connection p(w, step_peer);
  ASSERT_TRUE(p.send(step_envelope(1, 1)));
  EXPECT_TRUE(is_token(h.next()));
  // Every control message is refused, naming the message and the key's role.
  wire::Envelope shard;
  shard.mutable_shard_data()->set_shard_hash(std::string(64, 'a'));
  shard.mutable_shard_data()->set_total_bytes(4);
  shard.mutable_shard_data()->set_chunk_bytes(4);
  wire::Envelope profile;
  profile.mutable_profile_request()->set_model_path(kStories);
  profile.mutable_profile_request()->set_repetitions(1);
  profile.mutable_profile_request()->set_prompt_chunk(1);
  wire::Envelope free_sequence;
  free_sequence.mutable_free_sequence()->set_session(1);
  free_sequence.mutable_free_sequence()->set_sequence(1);
  wire::Envelope peer_hello;
  peer_hello.mutable_hello()->add_peer_keys(stranger.public_key);
  const std::pair<const char*, wire::Envelope> control[] = {
      {"Hello", peer_hello},
      {"LoadSegment", load_envelope(3, {stranger.public_key})},
      {"ProfileRequest", profile},
      {"FreeSequence", free_sequence},
      {"ShardData", shard},
      {"EndSession", end_session_envelope(1)},
  };
  for (const auto& [kind, e] : control) {
    std::vector<zmq::message_t> frames;
    if (e.has_shard_data()) frames.emplace_back(4);
    auto r = p.ask(e, std::move(frames));
    EXPECT_TRUE(is_error_with(r, "is a peer of session 1 and may only send its steps")) << kind << ": " << describe(r);
    EXPECT_TRUE(is_error_with(r, std::string("only keys the owner allowed may send ") + kind)) << describe(r);
  }
  // Its session was not ended, nor its sequence freed, and it introduced nobody.
  ASSERT_TRUE(p.send(step_envelope(1, 2)));
  EXPECT_TRUE(is_token(h.next()));
  // Steps of another session are refused.
  auto other = p.ask(step_envelope(2, 1));
  EXPECT_TRUE(is_error_with(other, "may not send steps of session 2")) << describe(other);
  Connection s(w, stranger);
  EXPECT_TRUE(s.refused());

  // A key introduced by Hello may only probe the link.
  Connection q(w, probe_peer);
  wire::Envelope ping;
  ping.mutable_ping();
  auto pong = q.ask(ping);
  EXPECT_TRUE(pong && pong->has_pong()) << describe(pong);
  auto q_step = q.ask(step_envelope(1, 3));
  EXPECT_TRUE(is_error_with(q_step, "may only send link probes")) << describe(q_step);
  auto q_load = q.ask(load_envelope(4));
  EXPECT_TRUE(is_error_with(q_load, "only keys the owner allowed may send LoadSegment")) << describe(q_load);
}

TEST(WorkerRoles, APeerLosesItsRightsWhenItsSessionEnds) {
  const net::KeyPair head = net::generate_keypair(), peer = net::generate_keypair();
  RunningWorker w({head.public_key});
  ASSERT_TRUE(w.ok());
  Connection h(w, head);
  auto loaded = h.ask(load_envelope(5, {peer.public_key}));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
  Connection p(w, peer);
  ASSERT_TRUE(p.send(step_envelope(5, 1)));
  EXPECT_TRUE(is_token(h.next()));

  auto ended = h.ask(end_session_envelope(5));
  ASSERT_TRUE(ended && ended->has_end_session() && ended->end_session().session() == 5) << describe(ended);
  // On the connection already open: refused per message.
  auto late = p.ask(step_envelope(5, 2));
  EXPECT_TRUE(is_error_with(late, "has no rights on this worker")) << describe(late);
  // A new connection: refused at the handshake.
  Connection again(w, peer);
  EXPECT_TRUE(again.refused());
}

std::unique_ptr<cluster::Head> loaded_head(const RunningWorker& w, const net::KeyPair& keys, const model::Model& m,
                                           Status* load_status) {
  cluster::HeadOptions o;
  o.workers = {w.address()};
  o.keys = keys;
  auto head = cluster::Head::connect(o);
  EXPECT_TRUE(head.ok()) << head.error();
  if (!head.ok()) return nullptr;
  cluster::SegmentLoadOptions lo;
  lo.n_ctx = 256;
  *load_status = head.value()->load(kStories, m, {model::UnitRange{0, unit_count()}}, lo);
  return std::move(head).value();
}

TEST(WorkerRoles, AFifthHeadIsBusyWhileFourGenerationsFinishIntact) {
  std::vector<net::KeyPair> heads(5);
  std::set<std::string> allowed;
  for (auto& k : heads) allowed.insert((k = net::generate_keypair()).public_key);
  RunningWorker w(allowed);
  ASSERT_TRUE(w.ok());
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<std::unique_ptr<cluster::Head>> live;
  for (int i = 0; i < 4; ++i) {
    Status st;
    live.push_back(loaded_head(w, heads[i], *m.value(), &st));
    ASSERT_TRUE(st.ok()) << st.message();
  }
  Status fifth;
  auto late = loaded_head(w, heads[4], *m.value(), &fifth);
  ASSERT_FALSE(fifth.ok());
  EXPECT_NE(fifth.message().find("worker busy: 4 sessions of other heads are live"), std::string::npos)
      << fifth.message();
  late.reset();

  std::string reference;
  ASSERT_NO_FATAL_FAILURE(reference = test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
  cluster::Request greedy;
  greedy.n_predict = 200;
  greedy.sampling.temp = 0;
  for (auto& head : live) {
    auto gens = head->generate({greedy}, [](size_t, const std::string&) {});
    ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
    EXPECT_EQ(gens[0].text, reference);
  }
}

TEST(WorkerRoles, ASilentHeadsSessionIsReclaimedAfterTheLease) {
  const net::KeyPair silent = net::generate_keypair(), active = net::generate_keypair(), peer = net::generate_keypair();
  RunningWorker w({silent.public_key, active.public_key}, /*max_sessions=*/1, /*lease=*/std::chrono::milliseconds(500));
  ASSERT_TRUE(w.ok());
  Connection s(w, silent), a(w, active);
  auto loaded = s.ask(load_envelope(11, {peer.public_key}));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
  auto busy = a.ask(load_envelope(12));
  EXPECT_TRUE(is_error_with(busy, "worker busy")) << describe(busy);
  std::this_thread::sleep_for(700ms);
  loaded = a.ask(load_envelope(12));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
  // The reclaimed session's peer lost its rights with it.
  Connection p(w, peer);
  EXPECT_TRUE(p.refused());
  auto gone = s.ask(step_envelope(11, 1));
  EXPECT_TRUE(is_error_with(gone, "unknown session 11")) << describe(gone);
}

wire::Envelope keep_alive_envelope(uint64_t session) {
  wire::Envelope e;
  e.set_request_id(11);
  e.mutable_keep_alive()->set_session(session);
  return e;
}

TEST(WorkerRoles, OnlyTheOwningHeadsKeepAliveRenewsASession) {
  const net::KeyPair owner = net::generate_keypair(), other = net::generate_keypair(), peer = net::generate_keypair();
  RunningWorker w({owner.public_key, other.public_key}, /*max_sessions=*/1, /*lease=*/std::chrono::milliseconds(600));
  ASSERT_TRUE(w.ok());
  Connection o(w, owner), x(w, other);
  auto loaded = o.ask(load_envelope(21, {peer.public_key}));
  ASSERT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
  Connection p(w, peer);  // allowed by the load
  // A session the worker does not hold: no reply, and the worker goes on (the next answer is the Ping's).
  ASSERT_TRUE(o.send(keep_alive_envelope(999)));
  wire::Envelope ping;
  ping.mutable_ping();
  auto pong = o.ask(ping);
  EXPECT_TRUE(pong && pong->has_pong()) << describe(pong);
  auto foreign = x.ask(keep_alive_envelope(21));
  EXPECT_TRUE(is_error_with(foreign, "session 21 belongs to another head, which alone may keep it alive"))
      << describe(foreign);
  auto from_peer = p.ask(keep_alive_envelope(21));
  EXPECT_TRUE(is_error_with(from_peer, "only keys the owner allowed may send KeepAlive")) << describe(from_peer);

  // Twice the lease on the owner's KeepAlives alone: still live, so the other head is busy.
  for (const auto until = Clock::now() + 1200ms; Clock::now() < until;) {
    ASSERT_TRUE(o.send(keep_alive_envelope(21)));
    std::this_thread::sleep_for(150ms);
  }
  auto busy = x.ask(load_envelope(22));
  EXPECT_TRUE(is_error_with(busy, "worker busy")) << describe(busy);
  std::this_thread::sleep_for(900ms);
  loaded = x.ask(load_envelope(22));
  EXPECT_TRUE(loaded && loaded->has_load_reply()) << describe(loaded);
}

}  // namespace
}  // namespace ll
