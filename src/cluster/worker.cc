#include "cluster/worker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <zmq.hpp>

#include "cluster/activation_wire.h"
#include "cluster/link_probe.h"
#include "cluster/request_validation.h"
#include "cluster/sampler_wire.h"
#include "cluster/step_validation.h"
#include "core/log.h"
#include "core/placement.h"
#include "core/system_memory.h"
#include "exec/score.h"
#include "graph/graph.h"
#include "kernels/matmul.h"
#include "profile/measure.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t micros(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// The library defaults when the head sent none.
text::SamplerParams sampler_params(const wire::Step& step) {
  return step.has_sampler() ? sampler_from_wire(step.sampler()) : text::SamplerParams{};
}

// Most messages handled before the sockets are read again, so one busy peer cannot starve the others.
constexpr int kMaxReadsPerSocket = 64;
constexpr size_t kMaxQueued = 256;

// A scored step runs through the head in passes of at most this many logits (64 MiB), however
// large its vocabulary and step.
constexpr int64_t kMaxScoreLogits = int64_t{16} << 20;
int64_t score_rows(int64_t n_vocab) { return std::max<int64_t>(1, kMaxScoreLogits / n_vocab); }

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(WorkerOptions options) {
  if (options.session_lease < std::chrono::milliseconds(1) || options.session_lease > std::chrono::hours(24)) {
    return Status::Errorf("session lease of {} ms: give 1 ms to 1 day", options.session_lease.count());
  }
  if (options.cache_dir.empty()) options.cache_dir = ShardCache::default_dir();
  LL_ASSIGN_OR_RETURN(ShardCache cache, ShardCache::open(options.cache_dir));
  if (options.model_dirs.empty()) options.model_dirs = {options.cache_dir, std::filesystem::current_path().string()};
  LL_ASSIGN_OR_RETURN(ModelAccess model_access, ModelAccess::create(options.model_dirs));
  LL_ASSIGN_OR_RETURN(auto server, net::Server::bind(options.listen, options.security));
  return std::unique_ptr<Worker>(
      new Worker(std::move(options), std::move(server), std::move(cache), std::move(model_access)));
}

Worker::Worker(WorkerOptions options, std::unique_ptr<net::Server> server, ShardCache cache, ModelAccess model_access)
    : options_(std::move(options)),
      server_(std::move(server)),
      cache_(std::move(cache)),
      model_access_(std::move(model_access)),
      roles_(options_.security.allowed, options_.security.insecure, options_.session_lease) {
  threads_ = options_.threads > 0 ? options_.threads : ll::default_thread_count();
  // What segments may use: the free memory, the cgroup's and the user's limits, less what this
  // process already holds and a reserve for messages in flight and allocator slack (a segment
  // filling its limit to the last byte would have its weights evicted and read again).
  constexpr uint64_t kReserve = 16ull << 20;
  const uint64_t usable = usable_memory_bytes(options_.memory_limit);
  const uint64_t own = resident_bytes() + kReserve;
  memory_limit_ = usable > own ? usable - own : 0;
  if (options_.name.empty()) options_.name = server_->endpoint();
  auto to_stderr = [name = options_.name](const std::string& line) { log::warn(name, "{}", line); };
  error_log_ = LogLimiter({.what = "error replies", .sources = "peers"}, to_stderr);
  send_log_ = LogLimiter({.what = "failed sends", .sources = "peers"}, to_stderr);
}

Worker::~Worker() = default;

Status Worker::serve(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    roles_.expire(Clock::now());
    sync_admitted();
    error_log_.flush();
    send_log_.flush();
    // Block only when there is nothing left to do; otherwise just pick up what has arrived,
    // unless enough is waiting already (then the sockets' high-water marks hold senders back).
    // While segments load, wait only briefly, so each is answered soon after it is ready.
    if (queue_.size() < kMaxQueued) {
      const bool building = !loading_.empty() || std::any_of(prepared_.begin(), prepared_.end(), [](const auto& p) {
                              return p.second.building.valid();
                            });
      const auto idle_wait = building ? std::chrono::milliseconds(5) : std::chrono::milliseconds(200);
      read_available(queue_.empty() ? idle_wait : std::chrono::milliseconds(0));
    }
    finish_loads();
    finish_prepares();
    if (queue_.empty()) {
      // Only now: a message still waiting might be the one that renews a session.
      free_silent_sessions();
      continue;
    }
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    handle(p);
  }
  return Status::Ok();
}

void Worker::read_available(std::chrono::milliseconds timeout) {
  std::vector<zmq::pollitem_t> items;
  std::vector<uint64_t> item_session;  // 0 for the server socket
  items.push_back({server_->socket().handle(), 0, ZMQ_POLLIN, 0});
  item_session.push_back(0);
  for (auto& [id, s] : sessions_) {
    if (!s->next) continue;
    items.push_back({s->next->socket().handle(), 0, ZMQ_POLLIN, 0});
    item_session.push_back(id);
  }
  try {
    zmq::poll(items.data(), items.size(), timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) log::error(options_.name, "poll failed: {}", e.what());
    return;
  }
  const auto now = Clock::now();
  for (size_t i = 0; i < items.size(); ++i) {
    if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
    for (int n = 0; n < kMaxReadsPerSocket; ++n) {
      if (i == 0) {
        auto r = server_->receive(std::chrono::milliseconds(0));
        if (!r.ok()) {
          log::warn(options_.name, "receive failed: {}", r.error());
          break;
        }
        if (!r.value()) break;
        queue_.push_back({std::move(*r.value()), std::nullopt, now});
      } else {
        auto it = sessions_.find(item_session[i]);
        if (it == sessions_.end()) break;
        auto r = it->second->next->receive(std::chrono::milliseconds(0));
        if (!r.ok() || !r.value()) break;
        net::Incoming in;
        in.message = std::move(*r.value());
        queue_.push_back({std::move(in), item_session[i], now});
      }
    }
  }
}

void Worker::handle(Pending& p) {
  net::Incoming& in = p.in;
  if (p.from_next) {
    on_downstream(*p.from_next, in);
    return;
  }
  const wire::Envelope& e = in.message.envelope();
  if (Status allowed = roles_.check(in.peer_key, e); !allowed.ok()) {
    reply_error(in.peer, e.request_id(), e.has_step() ? e.step().session() : 0, e.has_step() ? e.step().sequence() : 0,
                allowed.message());
    return;
  }
  roles_.heard_from(in.peer_key, Clock::now());
  switch (e.body_case()) {
    case wire::Envelope::kHello: on_hello(in); break;
    case wire::Envelope::kShardData: on_shard_data(in); break;
    case wire::Envelope::kLoadSegment: on_load(in); break;
    case wire::Envelope::kStep: on_step(in, p.read_at); break;
    case wire::Envelope::kFreeSequence: on_free(in); break;
    case wire::Envelope::kProfileRequest: on_profile(in); break;
    case wire::Envelope::kPing: on_ping(in); break;
    case wire::Envelope::kEndSession: on_end_session(in); break;
    case wire::Envelope::kReshape: on_reshape(in); break;
    case wire::Envelope::kSendKv: on_send_kv(in); break;
    case wire::Envelope::kKvData: on_kv_data(in); break;
    case wire::Envelope::kSwitchSegment: on_switch(in); break;
    case wire::Envelope::kSpeedProbe: on_speed_probe(in); break;
    case wire::Envelope::kKeepAlive: on_keep_alive(in); break;
    default:
      reply_error(in.peer, in.message.envelope().request_id(), 0, 0,
                  fmt::format("unexpected message (body {})", static_cast<int>(in.message.envelope().body_case())));
  }
}

void Worker::send(const std::string& peer, const wire::Envelope& e, std::vector<zmq::message_t> frames) {
  Status st = server_->send(peer, e, std::move(frames));
  if (!st.ok()) send_log_.log(peer, "send failed: " + st.message());
}

void Worker::reply_error(const std::string& peer, uint64_t request_id, uint64_t session, uint64_t sequence,
                         const std::string& message) {
  error_log_.log(peer, message);
  wire::Envelope e;
  e.set_request_id(request_id);
  wire::ErrorReply* err = e.mutable_error();
  err->set_message(fmt::format("worker {}: {}", options_.name, message));
  err->set_session(session);
  err->set_sequence(sequence);
  send(peer, e);
}

// HelloReply { worker, threads, simd_target, memory_limit, cached_shards[], session_lease_ms, host, kernel, cpus[] }
void Worker::on_hello(const net::Incoming& in) {
  std::vector<std::string> peers;
  for (const std::string& key : in.message.envelope().hello().peer_keys()) {
    if (net::is_valid_z85_key(key)) peers.push_back(key);
  }
  roles_.set_probe_peers(in.peer_key, peers, Clock::now());
  sync_admitted();  // before the reply: the head may have the peers probe this worker at once
  wire::Envelope e;
  e.set_request_id(in.message.envelope().request_id());
  wire::HelloReply* r = e.mutable_hello_reply();
  r->set_worker(options_.name);
  r->set_threads(static_cast<uint32_t>(threads_));
  r->set_simd_target(kernels::simd_target_name());
  r->set_memory_limit(memory_limit_);
  for (const std::string& h : cache_.hashes()) r->add_cached_shards(h);
  r->set_session_lease_ms(static_cast<uint32_t>(options_.session_lease.count()));  // at most a day: fits
  const Placement placement = this_placement();
  r->set_host(placement.host);
  r->set_kernel(placement.kernel);
  for (uint32_t cpu : placement.cpus) r->add_cpus(cpu);
  send(in.peer, e);
}

// ShardData { shard_hash, total_bytes, offset, chunk_bytes } + [chunk bytes]; acknowledged by
// ShardData { shard_hash, total_bytes, offset = bytes received so far } without a frame.
void Worker::on_shard_data(net::Incoming& in) {
  const wire::Envelope& e = in.message.envelope();
  const wire::ShardData& d = e.shard_data();
  auto& frames = in.message.frames;
  if (Status st = validate_shard_chunk(d, frames); !st.ok()) {
    reply_error(in.peer, e.request_id(), 0, 0, st.message());
    return;
  }
  auto received = cache_.write_chunk(d.shard_hash(), d.total_bytes(), d.offset(),
                                     {static_cast<const uint8_t*>(frames[0].data()), frames[0].size()}, memory_limit_);
  if (!received.ok()) {
    reply_error(in.peer, e.request_id(), 0, 0, received.error());
    return;
  }
  wire::Envelope ack;
  ack.set_request_id(e.request_id());
  wire::ShardData* a = ack.mutable_shard_data();
  a->set_shard_hash(d.shard_hash());
  a->set_total_bytes(d.total_bytes());
  a->set_offset(received.value());
  send(in.peer, ack);
}

Status Worker::make_room(uint64_t bytes, uint64_t keep, const std::string& head) {
  const auto now = Clock::now();
  auto used = [&] {
    uint64_t sum = 0;
    for (const auto& [id, s] : sessions_) sum += id == keep ? 0 : s->weight_bytes;
    return sum;
  };
  auto others = [&] { return sessions_.size() - sessions_.count(keep); };
  auto silent = [&](const Session& s) { return lease_expired(s, now); };
  while (others() > 0 && (others() >= options_.max_sessions || used() + bytes > memory_limit_)) {
    auto victim = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      const Session& s = *it->second;
      if (it->first == keep || (s.head_key != head && !silent(s))) continue;
      if (victim == sessions_.end() || s.last_active < victim->second->last_active) victim = it;
    }
    const double lease_s = std::chrono::duration<double>(options_.session_lease).count();
    if (victim == sessions_.end()) {
      const std::string full = others() >= options_.max_sessions
                                   ? fmt::format("at most {} sessions fit", options_.max_sessions)
                                   : fmt::format("their weights leave no room for {:.1f} MiB more within {:.1f} MiB",
                                                 bytes / 1048576.0, memory_limit_ / 1048576.0);
      return Status::Errorf("worker busy: {} sessions of other heads are live and {}; try again later (a session "
                            "is freed once its head has been silent for {:g} s) or use another worker",
                            others(), full, lease_s);
    }
    const Session& v = *victim->second;
    drop_session(victim, silent(v) ? fmt::format("reclaimed: silent for {:.0f} s",
                                                 std::chrono::duration<double>(now - v.last_active).count())
                                   : fmt::format("dropped: its head loads session {} and the worker is full", keep));
  }
  return Status::Ok();
}

void Worker::free_silent_sessions() {
  const auto now = Clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (lease_expired(*it->second, now)) {
      const double silent = std::chrono::duration<double>(now - it->second->last_active).count();
      if (auto p = prepared_.find(it->first); p != prepared_.end()) discard_prepared(p);
      drop_session(it, fmt::format("freed: its head was silent for {:.1f} s (session lease {:.1f} s)", silent,
                                   std::chrono::duration<double>(options_.session_lease).count()));
    }
    it = next;
  }
  // What a head prepared on a worker that holds none of its sessions yet (it was joining).
  for (auto it = prepared_.begin(); it != prepared_.end();) {
    auto next = std::next(it);
    if (sessions_.count(it->first) == 0 && now - it->second.last_active >= options_.session_lease) {
      log::info(options_.name, "session {}: the segment prepared for it is dropped: its head was silent for the lease",
                it->first);
      discard_prepared(it);
    }
    it = next;
  }
}

// KeepAlive { session }: no reply. The head's probe peers were renewed by handle(), as for any
// message of a head.
void Worker::on_keep_alive(const net::Incoming& in) {
  const uint64_t id = in.message.envelope().keep_alive().session();
  if (auto p = prepared_.find(id); p != prepared_.end() && p->second.head_key == in.peer_key) {
    p->second.last_active = Clock::now();
  }
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;  // ended or freed: the head learns it from its next step
  if (it->second->head_key != in.peer_key) {
    reply_error(in.peer, in.message.envelope().request_id(), id, 0,
                fmt::format("session {} belongs to another head, which alone may keep it alive", id));
    return;
  }
  it->second->last_active = Clock::now();
}

void Worker::drop_session(std::map<uint64_t, std::unique_ptr<Session>>::iterator it, const std::string& why) {
  log::info(options_.name, "session {} of head {}: {}", it->first,
            it->second->head_key.empty() ? "(insecure)" : it->second->head_key, why);
  roles_.end_session(it->first);
  sessions_.erase(it);
  sync_admitted();
}

void Worker::sync_admitted() {
  if (roles_.version() == admitted_version_) return;
  admitted_version_ = roles_.version();
  std::set<std::string> keys = roles_.admitted();
  for (const std::string& k : keys) {
    if (admitted_.count(k) == 0) server_->allow(k);
  }
  for (const std::string& k : admitted_) {
    if (keys.count(k) == 0) server_->disallow(k);
  }
  admitted_ = std::move(keys);
}

Result<Worker::LoadFile> Worker::check_load(const net::Incoming& in, const wire::LoadSegment& load) {
  if (auto it = sessions_.find(load.session()); it != sessions_.end() && it->second->head_key != in.peer_key) {
    return Status::Errorf("session {} belongs to another head; choose another session id", load.session());
  }
  LL_ASSIGN_OR_RETURN(LoadFile file, resolve_file(load));
  LL_RETURN_IF_ERROR(validate_load_fields(load, options_.security.insecure));
  if (loading_.count(load.session()) != 0) {
    return Status::Errorf("session {} is still loading; wait for its LoadReply before loading it again", load.session());
  }
  if (loading_.size() >= options_.max_sessions) {
    return Status::Errorf("{} segments are loading already; wait for their LoadReply", loading_.size());
  }
  return file;
}

Result<Worker::LoadFile> Worker::resolve_file(const wire::LoadSegment& load) {
  LoadFile file;
  switch (load.source_case()) {
    case wire::LoadSegment::kModelPath: {
      LL_ASSIGN_OR_RETURN(file.path, model_access_.resolve(load.model_path()));
      break;
    }
    case wire::LoadSegment::kShardHash: {
      LL_ASSIGN_OR_RETURN(ShardCache::Cached cached, cache_.find(load.shard_hash()));
      file.path = std::move(cached.path);
      if (!cached.verified) file.unverified_shard = load.shard_hash();
      break;
    }
    default: return Status::Error("LoadSegment names neither a model path nor a shard");
  }
  return file;
}

Result<std::unique_ptr<Worker::Session>> Worker::load_segment(const LoadFile& file, const wire::LoadSegment& load,
                                                              int threads, bool mmap, net::SecurityOptions next_security) {
  // A multi-GB shard takes seconds to hash: here, not on the thread that answers the network.
  if (!file.unverified_shard.empty()) LL_RETURN_IF_ERROR(ShardCache::verify(file.path, file.unverified_shard));
  auto session = std::make_unique<Session>();
  session->id = load.session();
  session->source = file.path;
  session->send_type = load.send_type();
  model::LoadOptions lo;
  lo.units = model::UnitRange{load.unit_begin(), load.unit_end()};
  lo.mmap = mmap;
  LL_ASSIGN_OR_RETURN(session->model, model::Model::load(file.path, lo));
  LL_ASSIGN_OR_RETURN(const model::KvTypes kv_types, kv_types_from_wire(load.cache_type_k(), load.cache_type_v()));
  LL_RETURN_IF_ERROR(model::check_kv_types(session->model->hparams(), kv_types));
  const graph::Graph g = graph::build_graph(*session->model);
  for (int64_t u = load.unit_begin(); u < static_cast<int64_t>(load.unit_end()); ++u) {
    session->weight_bytes += g.units[u].weight_bytes;
  }
  if (!load.next_endpoint().empty()) {
    LL_ASSIGN_OR_RETURN(session->next, net::Client::connect(load.next_endpoint(), load.next_public_key(), next_security));
  }
  session->executor = std::make_unique<exec::SegmentExecutor>(
      *session->model, model::UnitRange{load.unit_begin(), load.unit_end()},
      exec::ExecOptions{.n_ctx = load.n_ctx(), .n_threads = threads, .kv_types = kv_types});
  return session;
}

Result<Worker::Session*> Worker::install_session(std::unique_ptr<Session> session, const wire::LoadSegment& load,
                                                 const std::string& head_peer, const std::string& head_key) {
  session->head_peer = head_peer;
  session->head_key = head_key;
  LL_RETURN_IF_ERROR(make_room(session->weight_bytes, load.session(), head_key));
  uint64_t others = 0;
  for (const auto& [id, s] : sessions_) others += id == load.session() ? 0 : s->weight_bytes;
  if (others + session->weight_bytes > memory_limit_) {
    return Status::Errorf("units {}..{} need {:.1f} MiB of weights but the memory limit is {:.1f} MiB",
                          load.unit_begin(), load.unit_end() - 1, session->weight_bytes / 1048576.0,
                          memory_limit_ / 1048576.0);
  }
  session->last_active = Clock::now();
  Session* raw = session.get();
  sessions_[load.session()] = std::move(session);
  // Before the reply: the upstream peer connects as soon as the head has it load its segment.
  roles_.add_session(load.session(), head_key, {load.allow_keys().begin(), load.allow_keys().end()});
  sync_admitted();
  return raw;
}

// Starts reading the model in the background; finish_loads() answers.
void Worker::on_load(const net::Incoming& in) {
  const wire::LoadSegment& load = in.message.envelope().load_segment();
  auto file = check_load(in, load);
  if (!file.ok()) {
    reply_error(in.peer, in.message.envelope().request_id(), load.session(), 0, file.error());
    return;
  }
  net::SecurityOptions next_security;
  next_security.insecure = options_.security.insecure;
  next_security.keys = options_.security.keys;
  Loading& l = loading_[load.session()];
  l.peer = in.peer;
  l.peer_key = in.peer_key;
  l.request_id = in.message.envelope().request_id();
  l.load = load;
  l.unverified_shard = file->unverified_shard;
  l.started = Clock::now();
  l.session = std::async(std::launch::async, &Worker::load_segment, std::move(file).value(), l.load, threads_,
                         !options_.no_mmap,
                         std::move(next_security));
}

// LoadReply { session, weight_bytes, load_seconds }
void Worker::finish_loads() {
  for (auto it = loading_.begin(); it != loading_.end();) {
    if (it->second.session.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    Loading l = std::move(it->second);
    it = loading_.erase(it);
    const wire::LoadSegment& load = l.load;
    auto built = l.session.get();
    if (built.ok() && !l.unverified_shard.empty()) cache_.mark_verified(l.unverified_shard);
    Result<Session*> s = built.ok() ? install_session(std::move(built).value(), load, l.peer, l.peer_key) : Result<Session*>(built.status());
    if (!s.ok()) {
      reply_error(l.peer, l.request_id, load.session(), 0, s.error());
      continue;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - l.started).count();
    log::info(options_.name, "session {}: units {}..{} ({:.1f} MiB) loaded in {:.2f} s{}", load.session(),
              load.unit_begin(), load.unit_end() - 1, s.value()->weight_bytes / 1048576.0, seconds,
              load.next_endpoint().empty() ? ", last segment" : ", next " + load.next_endpoint());
    wire::Envelope e;
    e.set_request_id(l.request_id);
    wire::LoadReply* r = e.mutable_load_reply();
    r->set_session(load.session());
    r->set_weight_bytes(s.value()->weight_bytes);
    r->set_load_seconds(seconds);
    send(l.peer, e);
  }
}

void Worker::on_step(net::Incoming& in, Clock::time_point read_at) {
  const wire::Step& step = in.message.envelope().step();
  auto it = sessions_.find(step.session());
  if (it == sessions_.end()) {
    reply_error(in.peer, in.message.envelope().request_id(), step.session(), step.sequence(),
                fmt::format("unknown session {}", step.session()));
    return;
  }
  Session& s = *it->second;
  s.last_active = Clock::now();
  Status st = run_step(s, in, read_at);
  if (!st.ok()) reply_error(s.head_peer, in.message.envelope().request_id(), step.session(), step.sequence(), st.message());
}

Status Worker::run_step(Session& s, net::Incoming& in, Clock::time_point read_at) {
  wire::Envelope& envelope = in.message.envelope();
  wire::Step& step = *envelope.mutable_step();
  exec::SegmentExecutor& ex = *s.executor;
  const uint64_t seq = step.sequence();
  const int64_t n = step.n_tokens(), pos = step.position();
  const int64_t n_vocab = ex.n_vocab();
  if (s.freed.contains(seq)) {
    log::debug(options_.name, "session {}: a step of sequence {} came after its free; dropped", s.id, seq);
    return Status::Ok();
  }

  auto seq_it = s.sequences.find(seq);
  const bool is_new = seq_it == s.sequences.end();
  auto& frames = in.message.frames;
  // Everything is checked before any state is touched.
  LL_RETURN_IF_ERROR(validate_step(step, frames,
                                   StepLimits{.session = s.id,
                                              .n_ctx = ex.n_ctx(),
                                              .n_vocab = n_vocab,
                                              .n_embd = ex.n_embd(),
                                              .takes_tokens = ex.has_embed(),
                                              .sequence_length = is_new ? std::nullopt
                                                                        : std::optional(ex.sequence_length(seq)),
                                              .n_sequences = s.sequences.size(),
                                              .max_sequences = options_.max_sequences}));
  const int64_t hidden_values = n * ex.n_embd();
  zmq::message_t hidden;
  if (ex.has_embed()) {
    hidden.rebuild(static_cast<size_t>(hidden_values) * sizeof(float));
  } else {
    hidden = decode_activations(std::move(frames[0]), hidden_values, step.hidden_type());
  }

  if (is_new) {
    LL_RETURN_IF_ERROR(ex.create_sequence(seq));
    seq_it = s.sequences.emplace(seq, Sequence{}).first;
  }
  if (ex.has_head() && (is_new || pos == 0)) {
    seq_it->second.sampler.emplace(sampler_params(step), static_cast<int32_t>(n_vocab));
    seq_it->second.sampler->skip_draws(step.samples_before());
  }
  if (ex.has_head()) s.logits.resize(static_cast<size_t>(n_vocab));

  const auto t0 = Clock::now();
  const std::span<const int32_t> tokens(step.tokens().data(), static_cast<size_t>(n));
  const bool scoring = step.score() && ex.has_head();
  Result<std::vector<float>> log_probs = std::vector<float>{};
  if (scoring) log_probs = exec::score_tokens(ex, seq, pos, tokens, static_cast<float*>(hidden.data()), score_rows(n_vocab));
  Status st = scoring ? (log_probs.ok() ? Status::Ok() : log_probs.status())
                      : ex.forward(seq, pos, tokens, static_cast<float*>(hidden.data()), n, s.logits.data());
  if (!st.ok()) {
    if (is_new) {
      ex.free_sequence(seq);
      s.sequences.erase(seq_it);
    }
    return Status::Errorf("sequence {}: {}", seq, st.message());
  }
  int32_t token = -1;
  if (ex.has_head() && !scoring) {
    text::Sampler& sampler = *seq_it->second.sampler;
    for (int32_t t : step.tokens()) sampler.accept(t);
    if (!step.prefill_only()) token = sampler.sample(s.logits.data());
  }
  const auto t1 = Clock::now();
  wire::StageTiming timing;
  timing.set_stage(static_cast<uint32_t>(step.timings_size()));
  timing.set_compute_us(micros(t1 - t0));
  timing.set_queue_us(micros(t0 - read_at));
  timing.set_send_us(s.last_send_us);

  // A prompt's chunk before its last is answered by nothing: the last chunk's token answers the prompt.
  if (ex.has_head() && !step.prefill_only()) {
    // TokenResult { session, sequence, token (-1 when scoring), timings[], log_probs[] (scoring) } -> head
    wire::Envelope e;
    e.set_request_id(envelope.request_id());
    wire::TokenResult* r = e.mutable_token();
    r->set_session(s.id);
    r->set_sequence(seq);
    r->set_token(token);
    if (scoring) *r->mutable_log_probs() = {log_probs.value().begin(), log_probs.value().end()};
    *r->mutable_timings() = step.timings();
    *r->add_timings() = timing;
    send(s.head_peer, e);
  } else if (!ex.has_head()) {
    // Step { ..., hidden_bytes, hidden_type = the session's send type, timings[] + ours } +
    // [hidden: n x n_embd values] -> next worker. An F32 frame is the executor's output buffer itself.
    hidden = encode_activations(std::move(hidden), hidden_values, s.send_type);
    step.set_hidden_type(s.send_type);
    step.set_hidden_bytes(hidden.size());
    *step.add_timings() = timing;
    // A lost next worker would block the send (and this worker) for the whole send timeout. The
    // step is dropped: the head, whose own link to that worker is lost too, re-plans and replays
    // it, while an error reply racing that detection would end the sequence instead.
    if (s.next->disconnected()) {
      error_log_.log(s.head_peer, fmt::format("session {}: sequence {}: step dropped: the next worker is lost: {}",
                                              s.id, seq, s.next->disconnect_reason()));
      return Status::Ok();
    }
    std::vector<zmq::message_t> out;
    out.push_back(std::move(hidden));
    Status sent = s.next->send(envelope, std::move(out));
    if (!sent.ok()) return Status::Errorf("sequence {}: cannot reach the next worker: {}", seq, sent.message());
  }
  // Known only after the hand-off, so it travels with the session's next step.
  s.last_send_us = micros(Clock::now() - t1);
  if (step.end_sequence()) {
    ex.free_sequence(seq);
    s.sequences.erase(seq);
  }
  return Status::Ok();
}

void Worker::on_free(const net::Incoming& in) {
  const wire::FreeSequence& f = in.message.envelope().free_sequence();
  auto it = sessions_.find(f.session());
  if (it == sessions_.end()) return;  // already gone: freeing is idempotent
  it->second->last_active = Clock::now();
  it->second->freed.add(f.sequence());
  it->second->executor->free_sequence(f.sequence());
  // A sequence ended early (a client gone, a stop string, an error): said, for whoever watches.
  if (it->second->sequences.erase(f.sequence()) != 0) {
    log::info(options_.name, "session {}: sequence {} freed at the head's request", f.session(), f.sequence());
  }
}

// Errors of a downstream worker about our session's steps go on to the session's head.
void Worker::on_downstream(uint64_t session, const net::Incoming& in) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || in.message.envelope().body_case() != wire::Envelope::kError) return;
  send(it->second->head_peer, in.message.envelope());
}

// EndSession { session } -> the same EndSession once the session is gone
void Worker::on_end_session(const net::Incoming& in) {
  const uint64_t id = in.message.envelope().end_session().session();
  if (auto it = sessions_.find(id); it != sessions_.end()) {
    if (it->second->head_key != in.peer_key) {
      reply_error(in.peer, in.message.envelope().request_id(), id, 0,
                  fmt::format("session {} belongs to another head, which alone may end it", id));
      return;
    }
    drop_session(it, "ended by its head");
  }
  if (auto p = prepared_.find(id); p != prepared_.end() && p->second.head_key == in.peer_key) discard_prepared(p);
  send(in.peer, in.message.envelope());
}

// Pong { payload_bytes } for Ping { payload_bytes } + [payload]
void Worker::on_ping(const net::Incoming& in) {
  const uint64_t bytes = in.message.envelope().ping().payload_bytes();
  if (Status st = validate_ping(in.message.envelope().ping(), in.message.frames); !st.ok()) {
    reply_error(in.peer, in.message.envelope().request_id(), 0, 0, st.message());
    return;
  }
  wire::Envelope e;
  e.set_request_id(in.message.envelope().request_id());
  e.mutable_pong()->set_payload_bytes(bytes);
  send(in.peer, e);
}

// ProfileRequest { model_path, prompt_chunk, repetitions, decode_context, refresh, peers[], cache_type_k,
//                  cache_type_v }
//   -> ProfileReply { device_json, links[], cached }
// Runs on the serving thread, unlike a load, while nothing else does, so the timings see the
// device alone; the head asks one worker of a host at a time for the same reason.
void Worker::on_profile(const net::Incoming& in) {
  const wire::ProfileRequest& r = in.message.envelope().profile_request();
  const uint64_t request_id = in.message.envelope().request_id();
  if (Status st = validate_profile_request(r, options_.security.insecure); !st.ok()) {
    reply_error(in.peer, request_id, 0, 0, st.message());
    return;
  }
  // The same rules as a load's model path.
  auto path = model_access_.resolve(r.model_path());
  if (!path.ok()) {
    reply_error(in.peer, request_id, 0, 0, path.error());
    return;
  }
  const model::KvTypes kv_types = kv_types_from_wire(r.cache_type_k(), r.cache_type_v()).value();  // validated
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}", path.value(), r.prompt_chunk(), r.repetitions(),
                                      r.decode_context(), model::kv_type_name(kv_types.k), model::kv_type_name(kv_types.v));
  wire::Envelope e;
  e.set_request_id(request_id);
  wire::ProfileReply* reply = e.mutable_profile_reply();
  auto cached = profiles_.find(key);
  if (cached != profiles_.end() && !r.refresh()) {
    reply->set_device_json(cached->second);
    reply->set_cached(true);
  } else {
    log::info(options_.name, "profiling {} with {} thread(s)", r.model_path(), threads_);
    // The weights as the segments will hold them: a copy in memory runs other kernels.
    model::LoadOptions load_options;
    load_options.mmap = !options_.no_mmap;
    auto m = model::Model::load(path.value(), load_options);
    if (!m.ok()) {
      reply_error(in.peer, request_id, 0, 0, m.error());
      return;
    }
    profile::MeasureOptions mo;
    mo.name = options_.name;
    mo.decode_context = r.decode_context();
    mo.prompt_chunk = r.prompt_chunk();
    mo.kv_types = kv_types;
    auto p = profile::measure_device_profile(*m.value(), threads_, static_cast<int>(r.repetitions()), mo);
    if (!p.ok()) {
      reply_error(in.peer, request_id, 0, 0, p.error());
      return;
    }
    p.value().usable_memory_bytes = memory_limit_;  // what this worker will accept segments up to
    profiles_[key] = profile::to_json(p.value()).dump();
    reply->set_device_json(profiles_[key]);
  }
  for (const wire::Peer& peer : r.peers()) {
    net::SecurityOptions sec;
    sec.insecure = options_.security.insecure;
    sec.keys = options_.security.keys;
    auto link = probe_link(peer.endpoint(), peer.public_key(), sec);
    if (!link.ok()) {
      reply_error(in.peer, request_id, 0, 0, link.error());
      return;
    }
    wire::LinkMeasurement* l = reply->add_links();
    l->set_endpoint(peer.endpoint());
    l->set_rtt_seconds(link.value().rtt_seconds);
    l->set_bandwidth_bytes_per_s(link.value().bandwidth_bytes_per_s);
  }
  send(in.peer, e);
}

}  // namespace ll::cluster
