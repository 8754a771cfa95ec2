#include "cluster/head.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "cluster/activation_wire.h"
#include "cluster/content_hash.h"
#include "core/mapped_file.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "graph/shard.h"
#include "wire.pb.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kShardChunk = size_t{4} << 20;
constexpr uint64_t kShardWindow = 8;  // chunks in flight per upload
// How long the head waits for the workers to confirm a session's end; one that does not frees
// it when the session's lease runs out.
constexpr milliseconds kEndSessionWait{1000};

}  // namespace

Result<std::unique_ptr<Head>> Head::connect(HeadOptions options) {
  if (options.workers.empty()) return Status::Error("no workers given");
  std::vector<std::unique_ptr<net::Client>> clients;
  for (const WorkerAddress& w : options.workers) {
    auto c = connect_worker(w, options);
    if (!c.ok()) return Status::Errorf("worker {}: {}", w.endpoint, c.error());
    clients.push_back(std::move(c).value());
  }
  std::unique_ptr<Head> head(new Head(std::move(options), std::move(clients)));
  LL_RETURN_IF_ERROR(head->hello());
  return head;
}

Result<std::unique_ptr<net::Client>> Head::connect_worker(const WorkerAddress& w, const HeadOptions& options) {
  if (!options.insecure && !net::is_valid_z85_key(w.public_key)) {
    return Status::Errorf("'{}' is not a Z85 public key", w.public_key);
  }
  net::SecurityOptions sec;
  sec.insecure = options.insecure;
  sec.keys = options.keys;
  return net::Client::connect(w.endpoint, w.public_key, sec);
}

Head::Head(HeadOptions options, std::vector<std::unique_ptr<net::Client>> clients)
    : options_(std::move(options)), clients_(std::move(clients)) {
  workers_.resize(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) workers_[i].address = options_.workers[i];
  session_ = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
}

Head::~Head() { end_session(); }

// EndSession { session } -> every worker; each echoes it.
void Head::end_session() {
  if (!session_loaded_) return;
  std::vector<size_t> pending;
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (links_.disconnected(i)) continue;
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_end_session()->set_session(session_);
    if (clients_[i]->send(e).ok()) pending.push_back(i);
  }
  const auto deadline = Clock::now() + kEndSessionWait;
  while (!pending.empty() && Clock::now() < deadline) {
    for (size_t i : links_.poll(milliseconds(50))) {
      for (auto r = links_.receive(i); r.ok() && r.value(); r = links_.receive(i)) {
        if (r.value()->envelope().has_end_session()) std::erase(pending, i);
      }
    }
    std::erase_if(pending, [&](size_t i) { return links_.disconnected(i); });
  }
}

std::string Head::describe(size_t i) const {
  const std::string& name = workers_[i].name;
  const std::string& ep = workers_[i].address.endpoint;
  return name.empty() || name == ep ? fmt::format("worker {} ({})", i + 1, ep)
                                    : fmt::format("worker {} '{}' ({})", i + 1, name, ep);
}

// KeepAlive { session } -> every connected worker; no reply.
Status Head::keep_alive() {
  last_keep_alive_ = Clock::now();
  if (!session_loaded_) return Status::Ok();
  std::string failed;
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (links_.disconnected(i)) continue;
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_keep_alive()->set_session(session_);
    if (Status st = clients_[i]->send(e); !st.ok()) failed += (failed.empty() ? "" : "; ") + describe(i) + ": " + st.message();
  }
  if (!failed.empty()) return Status::Errorf("keep-alive not sent to {}", failed);
  return Status::Ok();
}

milliseconds Head::keep_alive_interval() const {
  milliseconds interval{1000};
  for (const WorkerInfo& w : workers_) {
    if (w.session_lease.count() > 0) interval = std::min(interval, std::max(milliseconds(1), w.session_lease / 3));
  }
  return interval;
}

Status Head::await_replies(std::vector<size_t> pending, milliseconds timeout, const char* what,
                           const std::function<Status(size_t, net::Message&)>& on_reply) {
  const auto deadline = Clock::now() + timeout;
  while (!pending.empty()) {
    if (cancelled()) return Status::Error("interrupted");
    // A slow load or profile on one worker must not let the session on the others lapse; a
    // worker that cannot be reached shows up below.
    if (Clock::now() - last_keep_alive_ >= keep_alive_interval()) (void)keep_alive();
    for (size_t i : pending) {
      if (links_.disconnected(i)) {
        return Status::Errorf("{} during {}: {}", describe(i), what, links_.disconnect_reason(i));
      }
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      std::string names;
      for (size_t i : pending) names += (names.empty() ? "" : ", ") + describe(i);
      return Status::Errorf("no {} reply within {:.1f} s from {}", what, timeout.count() / 1000.0, names);
    }
    const milliseconds wait = std::min({milliseconds(100), keep_alive_interval(),
                                         std::chrono::duration_cast<milliseconds>(deadline - now)});
    for (size_t i : links_.poll(wait)) {
      while (true) {
        auto r = links_.receive(i);
        if (!r.ok()) return Status::Errorf("{}: {}", describe(i), r.error());
        if (!r.value()) break;
        net::Message& m = *r.value();
        if (m.envelope().has_error()) return Status::Error(m.envelope().error().message());
        auto it = std::find(pending.begin(), pending.end(), i);
        if (it == pending.end()) continue;
        Status st = on_reply(i, m);
        if (!st.ok()) return st;
        pending.erase(it);
        break;
      }
    }
  }
  return Status::Ok();
}

// Hello { client } -> every worker; HelloReply { worker, threads, simd_target, memory_limit, cached_shards[], host,
// kernel, cpus[] }
Status Head::hello() {
  std::vector<size_t> all;
  for (size_t i = 0; i < clients_.size(); ++i) {
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    e.mutable_hello()->set_client("lingualinked head");
    for (size_t j = 0; j < clients_.size(); ++j) {
      if (j != i && !options_.insecure) e.mutable_hello()->add_peer_keys(options_.workers[j].public_key);
    }
    LL_RETURN_IF_ERROR(clients_[i]->send(e));
    all.push_back(i);
  }
  Status st = await_replies(all, options_.hello_timeout, "hello", [&](size_t i, net::Message& m) {
    if (!m.envelope().has_hello_reply()) return Status::Errorf("{} answered hello with something else", describe(i));
    const wire::HelloReply& r = m.envelope().hello_reply();
    WorkerInfo& w = workers_[i];
    w.name = r.worker();
    w.threads = r.threads();
    w.simd_target = r.simd_target();
    w.memory_limit = r.memory_limit();
    w.cached_shards = {r.cached_shards().begin(), r.cached_shards().end()};
    w.session_lease = milliseconds(r.session_lease_ms());
    w.placement = believed({r.host(), r.kernel(), {r.cpus().begin(), r.cpus().end()}});
    return Status::Ok();
  });
  // The key question only when every worker was reached: otherwise the links are what failed.
  const bool all_reached =
      std::all_of(clients_.begin(), clients_.end(), [](const auto& c) { return c->ever_connected(); });
  if (!st.ok() && !options_.insecure && all_reached) {
    return Status::Errorf("{}. Does the worker allow this head's public key {} (worker --allow), and is the "
                          "worker key given here its public key?",
                          st.message(), options_.keys.public_key);
  }
  return st;
}

// ProfileRequest { model_path, prompt_chunk, repetitions, decode_context, refresh } -> the
// workers in rounds, all of a round at once, no two in a round competing for a machine's cores
// (rounds_apart): their timings would disturb each other's. Then the same request with
// peers = the other workers -> each worker in turn, answered from the profile it just measured,
// for its links (a worker busy timing would answer its peers' probes late).
// ProfileReply { device_json, links[] }.
Result<profile::ClusterProfile> Head::profile(const std::string& model_path, const ProfileOptions& options,
                                           const std::function<void(const std::string&)>& progress) {
  const std::string absolute = std::filesystem::absolute(model_path).string();
  std::vector<std::string> names(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) {
    names[i] = workers_[i].name.empty() ? workers_[i].address.endpoint : workers_[i].name;
    for (size_t j = 0; j < i; ++j) {
      if (names[j] == names[i]) names[i] += " " + workers_[i].address.endpoint;
    }
  }
  auto send_request = [&](size_t i, bool refresh, bool with_peers) {
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    wire::ProfileRequest* r = e.mutable_profile_request();
    r->set_model_path(absolute);
    r->set_prompt_chunk(static_cast<uint32_t>(options.prompt_chunk));
    r->set_repetitions(static_cast<uint32_t>(options.repetitions));
    r->set_decode_context(static_cast<uint32_t>(options.decode_context));
    r->set_cache_type_k(model::kv_type_name(options.kv_types.k));
    r->set_cache_type_v(model::kv_type_name(options.kv_types.v));
    r->set_refresh(refresh);
    for (size_t j = 0; j < clients_.size() && with_peers; ++j) {
      if (j == i) continue;
      wire::Peer* peer = r->add_peers();
      peer->set_endpoint(options_.workers[j].endpoint);
      peer->set_public_key(options_.workers[j].public_key);
    }
    return clients_[i]->send(e);
  };
  auto reply_of = [&](size_t i, net::Message& m) -> Result<const wire::ProfileReply*> {
    if (!m.envelope().has_profile_reply()) return Status::Errorf("{} answered a profile request with something else", describe(i));
    return &m.envelope().profile_reply();
  };

  std::vector<Placement> placements;
  for (const WorkerInfo& w : workers_) placements.push_back(w.placement);
  std::vector<profile::DeviceProfile> devices(clients_.size());
  size_t profiled = 0;
  for (const std::vector<size_t>& batch : rounds_apart(placements)) {
    std::string who;
    for (size_t i : batch) {
      who += (who.empty() ? "" : ", ") + describe(i);
      LL_RETURN_IF_ERROR(send_request(i, options.refresh, /*with_peers=*/false));
    }
    if (progress) progress(fmt::format("profiling {}...", who));
    LL_RETURN_IF_ERROR(await_replies(batch, options.timeout, "profile", [&](size_t i, net::Message& m) -> Status {
      LL_ASSIGN_OR_RETURN(const wire::ProfileReply* reply, reply_of(i, m));
      const auto j = nlohmann::json::parse(reply->device_json(), nullptr, /*allow_exceptions=*/false);
      LL_ASSIGN_OR_RETURN(devices[i], profile::device_profile_from_json(j));
      devices[i].name = names[i];
      return Status::Ok();
    }));
    profiled += batch.size();
    if (options.progress) options.progress({"workers profiled", profiled, clients_.size()});
  }
  profile::ClusterProfile cluster;
  cluster.devices = std::move(devices);
  if (clients_.size() < 2) return cluster;
  // The probe rights the last Hello gave each worker's peers may have lapsed while slow devices
  // were timed: a fresh Hello renews them.
  LL_RETURN_IF_ERROR(hello());
  if (progress) progress("measuring the links between the workers...");
  for (size_t i = 0; i < clients_.size(); ++i) {
    LL_RETURN_IF_ERROR(send_request(i, /*refresh=*/false, /*with_peers=*/true));
    LL_RETURN_IF_ERROR(await_replies({i}, options.timeout, "link probe", [&](size_t, net::Message& m) -> Status {
      LL_ASSIGN_OR_RETURN(const wire::ProfileReply* reply, reply_of(i, m));
      for (const wire::LinkMeasurement& l : reply->links()) {
        size_t to = clients_.size();
        for (size_t k = 0; k < clients_.size(); ++k) {
          if (k != i && options_.workers[k].endpoint == l.endpoint()) to = k;
        }
        if (to == clients_.size()) return Status::Errorf("{} measured a link to an unknown peer {}", describe(i), l.endpoint());
        if (!(l.bandwidth_bytes_per_s() > 0) || !(l.rtt_seconds() >= 0)) {
          return Status::Errorf("{} reports an impossible link to {}", describe(i), l.endpoint());
        }
        cluster.links.push_back({names[i], names[to], l.rtt_seconds(), l.bandwidth_bytes_per_s()});
      }
      return Status::Ok();
    }));
  }
  return cluster;
}

// ShardData { shard_hash, total_bytes, offset, chunk_bytes } + [chunk] -> worker, in order, at
// most kShardWindow chunks ahead of the worker's acknowledgements (ShardData { offset = received }).
Status Head::send_shard(size_t i, const std::string& path, const std::string& hash, const std::string& what,
                        const ProgressSink& progress) {
  LL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const uint64_t total = file->size();
  uint64_t sent = 0, acked = 0;
  while (acked < total) {
    while (sent < total && sent < acked + kShardWindow * kShardChunk) {
      const uint64_t n = std::min<uint64_t>(kShardChunk, total - sent);
      wire::Envelope e;
      e.set_request_id(counters_.next_request++);
      wire::ShardData* d = e.mutable_shard_data();
      d->set_shard_hash(hash);
      d->set_total_bytes(total);
      d->set_offset(sent);
      d->set_chunk_bytes(n);
      std::vector<zmq::message_t> frames;
      frames.emplace_back(data + sent, n);
      LL_RETURN_IF_ERROR(clients_[i]->send(e, std::move(frames)));
      sent += n;
    }
    LL_RETURN_IF_ERROR(await_replies({i}, milliseconds(30000), "shard", [&](size_t, net::Message& m) {
      if (!m.envelope().has_shard_data() || m.envelope().shard_data().shard_hash() != hash) {
        return Status::Errorf("{} answered a shard chunk with something else", describe(i));
      }
      acked = m.envelope().shard_data().offset();
      return Status::Ok();
    }));
    if (progress) progress({what, std::min(acked, total), total, ProgressUnit::bytes});
  }
  workers_[i].cached_shards.insert(hash);
  return Status::Ok();
}

// LoadSegment { session, model_path | shard_hash, unit_begin, unit_end, n_ctx, next_endpoint,
//               next_public_key, allow_keys = [previous worker's key], cache_type_k, cache_type_v } -> worker i
Status Head::load(const std::string& model_path, const model::Model& model,
                  const std::vector<model::UnitRange>& segments, const SegmentLoadOptions& options) {
  if (segments.size() != clients_.size()) {
    return Status::Errorf("{} segments for {} workers", segments.size(), clients_.size());
  }
  if (!model.has_vocab()) return Status::Errorf("{}: the head needs the model's vocabulary", model_path);
  LL_ASSIGN_OR_RETURN(text::Tokenizer tok, text::Tokenizer::create(model.vocab()));
  tokenizer_ = std::make_unique<text::Tokenizer>(std::move(tok));
  const auto& hp = model.hparams();
  n_ctx_ = options.n_ctx;
  hidden_value_bytes_ = activation_bytes(options.wire_type);
  n_embd_ = hp.n_embd;
  n_vocab_ = hp.n_vocab;
  const graph::Graph g = graph::build_graph(model, options.kv_types);
  flops_per_token_ = 0;
  for (const auto& u : g.units) flops_per_token_ += u.decode_flops(0);

  std::vector<size_t> stages;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (!segments[i].empty()) stages.push_back(i);
  }
  if (stages.empty()) return Status::Error("no worker holds any units");
  model_ = &model;
  shard_dir_ = options.shard_dir.empty()
                   ? (std::filesystem::temp_directory_path() / fmt::format("lingualinked-shards-{}", session_)).string()
                   : options.shard_dir;
  std::vector<std::string> shard_hashes(segments.size());
  if (options.send_shards) {
    for (size_t i : stages) {
      LL_ASSIGN_OR_RETURN(BalancerSetup::ShardFile shard, write_shard(segments[i]));
      const std::string what =
          fmt::format("sending units {}..{} to {}", segments[i].begin, segments[i].end - 1, describe(i));
      Status sent = workers_[i].cached_shards.count(shard.hash) == 0
                        ? send_shard(i, shard.path, shard.hash, what, options.progress)
                        : Status::Ok();
      // The worker keeps it in its cache; this copy was only the source.
      std::error_code ec;
      std::filesystem::remove(shard.path, ec);
      LL_RETURN_IF_ERROR(sent);
      shard_hashes[i] = shard.hash;
    }
  }
  // From the last worker back to the first: a worker allows its upstream peer's key while it
  // loads, so that peer's connection to it, made when the peer loads, is never refused.
  const std::string absolute = std::filesystem::absolute(model_path).string();
  session_loaded_ = true;
  for (size_t k = stages.size(); k-- > 0;) {
    const size_t i = stages[k];
    wire::Envelope e;
    e.set_request_id(counters_.next_request++);
    wire::LoadSegment* l = e.mutable_load_segment();
    l->set_session(session_);
    if (options.send_shards) {
      l->set_shard_hash(shard_hashes[i]);
    } else {
      l->set_model_path(absolute);
    }
    l->set_unit_begin(static_cast<uint32_t>(segments[i].begin));
    l->set_unit_end(static_cast<uint32_t>(segments[i].end));
    l->set_n_ctx(static_cast<uint32_t>(options.n_ctx));
    l->set_send_type(options.wire_type);
    l->set_cache_type_k(model::kv_type_name(options.kv_types.k));
    l->set_cache_type_v(model::kv_type_name(options.kv_types.v));
    if (k + 1 < stages.size()) {
      l->set_next_endpoint(workers_[stages[k + 1]].address.endpoint);
      l->set_next_public_key(workers_[stages[k + 1]].address.public_key);
    }
    if (k > 0 && !options_.insecure) l->add_allow_keys(workers_[stages[k - 1]].address.public_key);
    LL_RETURN_IF_ERROR(clients_[i]->send(e));
    LL_RETURN_IF_ERROR(await_replies({i}, milliseconds(120000), "load", [&](size_t, net::Message& m) {
      if (!m.envelope().has_load_reply() || m.envelope().load_reply().session() != session_) {
        return Status::Errorf("{} answered the segment assignment with something else", describe(i));
      }
      return Status::Ok();
    }));
    if (options.progress) options.progress({"workers loading their segments", stages.size() - k, stages.size()});
  }
  BalancerSetup setup;
  setup.session = session_;
  for (size_t i = 0; i < clients_.size(); ++i) {
    setup.workers.push_back(workers_[i].address);
    setup.names.push_back(workers_[i].name.empty() ? describe(i) : workers_[i].name);
  }
  setup.insecure = options_.insecure;
  setup.n_ctx = options.n_ctx;
  setup.send_type = options.wire_type;
  setup.kv_types = options.kv_types;
  setup.graph = g;
  setup.model_path = absolute;
  if (options.send_shards) {
    setup.write_shard = [this](model::UnitRange r) { return write_shard(r); };
    setup.cached_shards = [this](size_t i) -> std::set<std::string>& { return workers_[i].cached_shards; };
  }
  setup.planning = planning_;
  balancer_ = std::make_unique<Rebalancer>(std::move(setup), balance_, segments);
  return Status::Ok();
}

void Head::set_balancing(BalanceOptions options, std::optional<BalancePlanning> planning) {
  balance_ = std::move(options);
  planning_ = std::move(planning);
  if (balancer_) balancer_->configure(balance_, planning_);
}

const std::vector<model::UnitRange>& Head::segments() const {
  static const std::vector<model::UnitRange> kNone;
  return balancer_ ? balancer_->ranges() : kNone;
}

// "<stem>.units<begin>-<end>.gguf" in the shard directory, with its content hash.
Result<BalancerSetup::ShardFile> Head::write_shard(model::UnitRange range) {
  std::error_code ec;
  std::filesystem::create_directories(shard_dir_, ec);
  if (ec) return Status::Errorf("{}: cannot create directory: {}", shard_dir_, ec.message());
  const std::string stem = std::filesystem::path(model_->file().name()).stem().string();
  BalancerSetup::ShardFile shard;
  shard.path = (std::filesystem::path(shard_dir_) / fmt::format("{}.units{}-{}.gguf", stem, range.begin, range.end - 1)).string();
  LL_RETURN_IF_ERROR(graph::write_shard(*model_, graph::build_graph(*model_), range, shard.path));
  LL_ASSIGN_OR_RETURN(shard.hash, sha256_file(shard.path));
  return shard;
}

std::vector<Generation> Head::generate(const std::vector<Request>& requests, const GenerationRun::OnText& on_text) {
  if (!tokenizer_) {
    std::vector<Generation> out(requests.size());
    for (auto& g : out) g.status = Status::Error("no model loaded");
    return out;
  }
  std::unique_ptr<GenerationRun> run = begin_run(requests, on_text, /*trace_tokens=*/true);
  while (run->active()) run->turn();
  close_run(*run);
  return run->generations();
}

std::unique_ptr<GenerationRun> Head::open_run(GenerationRun::OnText on_text, bool trace_tokens) {
  if (!tokenizer_) return nullptr;
  return begin_run({}, std::move(on_text), trace_tokens);
}

std::unique_ptr<GenerationRun> Head::begin_run(std::vector<Request> requests, GenerationRun::OnText on_text,
                                               bool trace_tokens) {
  PipelineShape shape{.session = session_, .n_ctx = n_ctx_, .n_embd = n_embd_, .n_vocab = n_vocab_,
                      .hidden_value_bytes = hidden_value_bytes_, .flops_per_token = flops_per_token_, .worker_names = {},
                      .stages = balancer_->stages(), .keep_alive_every = keep_alive_interval(),
                      .prompt_chunk = prompt_chunk_, .prompt_costs = {}};
  for (size_t i = 0; i < clients_.size(); ++i) shape.worker_names.push_back(describe(i));
  if (prompt_chunk_ == 0 && planning_) {
    shape.prompt_costs = plan::prompt_stage_costs(graph::build_graph(*model_), planning_->profile, planning_->cost,
                                                  segments(), shape.stages);
  }
  trace_ = RunTrace{};
  for (size_t i = 0; i < clients_.size(); ++i) trace_.worker_names.push_back(workers_[i].name.empty() ? describe(i) : workers_[i].name);
  auto run = std::make_unique<GenerationRun>(
      links_, *tokenizer_, std::move(shape), counters_,
      RunOptions{.min_step_timeout = options_.min_step_timeout, .cancel = options_.cancel, .clock = {},
                 .trace = trace_tokens ? &trace_ : nullptr},
      std::move(requests), std::move(on_text));
  if (balancer_->controls()) {
    balancer_->begin_run(&trace_);
    run->set_controller(balancer_.get());
  }
  run->start();
  return run;
}

void Head::close_run(GenerationRun& run) {
  if (balancer_->controls()) balancer_->end_run(run);
  last_keep_alive_ = Clock::now();  // the run kept the session alive
}

std::vector<Result<std::vector<float>>> Head::score(const std::vector<std::vector<int32_t>>& sequences) {
  std::vector<Request> requests(sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    requests[i].prompt_tokens = sequences[i];
    requests[i].score = true;
  }
  std::vector<Generation> gens = generate(requests, [](size_t, const std::string&) {});
  std::vector<Result<std::vector<float>>> out;
  for (Generation& g : gens) {
    if (g.status.ok()) {
      out.emplace_back(std::move(g.log_probs));
    } else {
      out.emplace_back(std::move(g.status));
    }
  }
  return out;
}

}  // namespace ll::cluster
