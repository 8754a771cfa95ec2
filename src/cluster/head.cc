#include "cluster/head.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "cluster/content_hash.h"
#include "core/mapped_file.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "graph/shard.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kShardChunk = size_t{4} << 20;
constexpr uint64_t kShardWindow = 8;  // chunks in flight per upload
// Until a step has been measured, deadlines assume this pessimistic pipeline speed.
constexpr double kSlowestFlops = 1e9;
// A step is declared lost after this many times its expected round trip.
constexpr double kDeadlineFactor = 10;
constexpr milliseconds kProbeTimeout{1500};

uint64_t micros(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

void set_sampler(const text::SamplerParams& p, wire::SamplerParams* w) {
  w->set_temp(p.temp);
  w->set_top_k(p.top_k);
  w->set_top_p(p.top_p);
  w->set_min_p(p.min_p);
  w->set_repeat_penalty(p.repeat_penalty);
  w->set_repeat_last_n(p.repeat_last_n);
  w->set_seed(p.seed);
}

}  // namespace

struct Head::Active {
  size_t index = 0;
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
  bool done = false;
};

Result<std::unique_ptr<Head>> Head::connect(HeadOptions options) {
  if (options.workers.empty()) return Status::Error("no workers given");
  std::vector<std::unique_ptr<net::Client>> clients;
  for (const WorkerAddress& w : options.workers) {
    if (!options.insecure && !net::is_valid_z85_key(w.public_key)) {
      return Status::Errorf("worker {}: '{}' is not a Z85 public key", w.endpoint, w.public_key);
    }
    net::SecurityOptions sec;
    sec.insecure = options.insecure;
    sec.keys = options.keys;
    auto c = net::Client::connect(w.endpoint, w.public_key, sec);
    if (!c.ok()) return Status::Errorf("worker {}: {}", w.endpoint, c.error());
    clients.push_back(std::move(c).value());
  }
  std::unique_ptr<Head> head(new Head(std::move(options), std::move(clients)));
  LL_RETURN_IF_ERROR(head->hello());
  return head;
}

Head::Head(HeadOptions options, std::vector<std::unique_ptr<net::Client>> clients)
    : options_(std::move(options)), clients_(std::move(clients)) {
  workers_.resize(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) workers_[i].address = options_.workers[i];
  session_ = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
}

Head::~Head() = default;

std::string Head::describe(size_t i) const {
  const std::string& name = workers_[i].name;
  const std::string& ep = workers_[i].address.endpoint;
  return name.empty() || name == ep ? fmt::format("worker {} ({})", i + 1, ep)
                                    : fmt::format("worker {} '{}' ({})", i + 1, name, ep);
}

std::vector<size_t> Head::poll(milliseconds timeout) {
  std::vector<zmq::pollitem_t> items;
  for (auto& c : clients_) items.push_back({c->socket().handle(), 0, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items.data(), items.size(), timeout);
  } catch (const zmq::error_t&) {
    return {};  // EINTR: a signal; the caller checks for cancellation
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].revents & ZMQ_POLLIN) ready.push_back(i);
  }
  return ready;
}

Status Head::await_replies(std::vector<size_t> pending, milliseconds timeout, const char* what,
                           const std::function<Status(size_t, net::Message&)>& on_reply) {
  const auto deadline = Clock::now() + timeout;
  while (!pending.empty()) {
    if (cancelled()) return Status::Error("interrupted");
    for (size_t i : pending) {
      if (clients_[i]->disconnected()) {
        return Status::Errorf("{} during {}: {}", describe(i), what, clients_[i]->disconnect_reason());
      }
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      std::string names;
      for (size_t i : pending) names += (names.empty() ? "" : ", ") + describe(i);
      return Status::Errorf("no {} reply within {:.1f} s from {}", what, timeout.count() / 1000.0, names);
    }
    for (size_t i : poll(std::min(milliseconds(100), std::chrono::duration_cast<milliseconds>(deadline - now)))) {
      while (true) {
        auto r = clients_[i]->receive(milliseconds(0));
        if (!r.ok()) return Status::Errorf("{}: {}", describe(i), r.error());
        if (!r.value()) break;
        net::Message& m = *r.value();
        if (m.envelope.has_error()) return Status::Error(m.envelope.error().message());
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

// Hello { client } -> every worker; HelloReply { worker, threads, simd_target, memory_limit, cached_shards[] }
Status Head::hello() {
  std::vector<size_t> all;
  for (size_t i = 0; i < clients_.size(); ++i) {
    wire::Envelope e;
    e.set_request_id(next_request_++);
    e.mutable_hello()->set_client("lingualinked head");
    for (size_t j = 0; j < clients_.size(); ++j) {
      if (j != i && !options_.insecure) e.mutable_hello()->add_peer_keys(options_.workers[j].public_key);
    }
    LL_RETURN_IF_ERROR(clients_[i]->send(e));
    all.push_back(i);
  }
  Status st = await_replies(all, options_.hello_timeout, "hello", [&](size_t i, net::Message& m) {
    if (!m.envelope.has_hello_reply()) return Status::Errorf("{} answered hello with something else", describe(i));
    const wire::HelloReply& r = m.envelope.hello_reply();
    WorkerInfo& w = workers_[i];
    w.name = r.worker();
    w.threads = r.threads();
    w.simd_target = r.simd_target();
    w.memory_limit = r.memory_limit();
    w.cached_shards = {r.cached_shards().begin(), r.cached_shards().end()};
    return Status::Ok();
  });
  if (!st.ok() && !options_.insecure) {
    return Status::Errorf("{}. Does the worker allow this head's public key {} (worker --allow), and is the "
                          "worker key given here its public key?",
                          st.message(), options_.keys.public_key);
  }
  return st;
}

// ProfileRequest { model_path, prompt_chunk, repetitions, decode_context, refresh, peers = the
// other workers } -> worker i, one after the other; ProfileReply { device_json, links[] }.
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
  profile::ClusterProfile cluster;
  for (size_t i = 0; i < clients_.size(); ++i) {
    if (progress) progress(fmt::format("profiling {} and its links...", describe(i)));
    wire::Envelope e;
    e.set_request_id(next_request_++);
    wire::ProfileRequest* r = e.mutable_profile_request();
    r->set_model_path(absolute);
    r->set_prompt_chunk(static_cast<uint32_t>(options.prompt_chunk));
    r->set_repetitions(static_cast<uint32_t>(options.repetitions));
    r->set_decode_context(static_cast<uint32_t>(options.decode_context));
    r->set_refresh(options.refresh);
    for (size_t j = 0; j < clients_.size(); ++j) {
      if (j == i) continue;
      wire::Peer* peer = r->add_peers();
      peer->set_endpoint(options_.workers[j].endpoint);
      peer->set_public_key(options_.workers[j].public_key);
    }
    LL_RETURN_IF_ERROR(clients_[i]->send(e));
    LL_RETURN_IF_ERROR(await_replies({i}, options.timeout, "profile", [&](size_t, net::Message& m) -> Status {
      if (!m.envelope.has_profile_reply()) return Status::Errorf("{} answered a profile request with something else", describe(i));
      const wire::ProfileReply& reply = m.envelope.profile_reply();
      const auto j = nlohmann::json::parse(reply.device_json(), nullptr, /*allow_exceptions=*/false);
      LL_ASSIGN_OR_RETURN(profile::DeviceProfile device, profile::device_profile_from_json(j));
      device.name = names[i];
      cluster.devices.push_back(std::move(device));
      for (const wire::LinkMeasurement& l : reply.links()) {
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
Status Head::send_shard(size_t i, const std::string& path, const std::string& hash) {
  LL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const uint64_t total = file->size();
  uint64_t sent = 0, acked = 0;
  while (acked < total) {
    while (sent < total && sent < acked + kShardWindow * kShardChunk) {
      const uint64_t n = std::min<uint64_t>(kShardChunk, total - sent);
      wire::Envelope e;
      e.set_request_id(next_request_++);
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
      if (!m.envelope.has_shard_data() || m.envelope.shard_data().shard_hash() != hash) {
        return Status::Errorf("{} answered a shard chunk with something else", describe(i));
      }
      acked = m.envelope.shard_data().offset();
      return Status::Ok();
    }));
  }
  workers_[i].cached_shards.insert(hash);
  return Status::Ok();
}

// LoadSegment { session, model_path | shard_hash, unit_begin, unit_end, n_ctx, next_endpoint,
//               next_public_key, allow_keys = [previous worker's key] } -> worker i
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
  n_embd_ = hp.n_embd;
  n_vocab_ = hp.n_vocab;
  const graph::Graph g = graph::build_graph(model);
  flops_per_token_ = 0;
  for (const auto& u : g.units) flops_per_token_ += u.decode_flops(0);

  std::vector<std::string> shard_hashes;
  if (options.send_shards) {
    std::vector<int64_t> cuts;
    for (size_t s = 1; s < segments.size(); ++s) cuts.push_back(segments[s].begin);
    LL_ASSIGN_OR_RETURN(graph::Partition partition, graph::partition_from_cuts(g, cuts));
    const std::string dir = options.shard_dir.empty() ? (std::filesystem::temp_directory_path() /
                                                         fmt::format("lingualinked-shards-{}", session_)).string()
                                                      : options.shard_dir;
    LL_ASSIGN_OR_RETURN(auto paths, graph::write_shards(model, g, partition, dir));
    Status sent;
    for (size_t i = 0; i < paths.size() && sent.ok(); ++i) {
      auto hash = sha256_file(paths[i]);
      sent = hash.ok() ? Status::Ok() : hash.status();
      if (sent.ok() && workers_[i].cached_shards.count(hash.value()) == 0) sent = send_shard(i, paths[i], hash.value());
      if (sent.ok()) shard_hashes.push_back(hash.value());
    }
    // The workers keep them in their caches; these copies were only the source.
    std::error_code ec;
    for (const std::string& path : paths) std::filesystem::remove(path, ec);
    LL_RETURN_IF_ERROR(sent);
  }
  // From the last worker back to the first: a worker allows its upstream peer's key while it
  // loads, so that peer's connection to it, made when the peer loads, is never refused.
  const std::string absolute = std::filesystem::absolute(model_path).string();
  for (size_t i = clients_.size(); i-- > 0;) {
    wire::Envelope e;
    e.set_request_id(next_request_++);
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
    if (i + 1 < clients_.size()) {
      l->set_next_endpoint(workers_[i + 1].address.endpoint);
      l->set_next_public_key(workers_[i + 1].address.public_key);
    }
    if (i > 0 && !options_.insecure) l->add_allow_keys(workers_[i - 1].address.public_key);
    LL_RETURN_IF_ERROR(clients_[i]->send(e));
    LL_RETURN_IF_ERROR(await_replies({i}, milliseconds(120000), "load", [&](size_t, net::Message& m) {
      if (!m.envelope.has_load_reply() || m.envelope.load_reply().session() != session_) {
        return Status::Errorf("{} answered the segment assignment with something else", describe(i));
      }
      return Status::Ok();
    }));
  }
  return Status::Ok();
}

std::vector<Generation> Head::generate(const std::vector<Request>& requests,
                                       const std::function<void(size_t, const std::string&)>& on_text) {
  const auto began = Clock::now();
  std::vector<Generation> out(requests.size());
  if (!tokenizer_) {
    for (auto& g : out) g.status = Status::Error("no model loaded");
    return out;
  }
  const text::Vocab& vocab = tokenizer_->vocab();
  const size_t n_workers = clients_.size();
  std::vector<Active> active(requests.size());
  std::map<uint64_t, size_t> by_sequence;

  auto expected_us = [&](int64_t n_tokens) {
    const double per_step = step_ema_us_ > 0 ? step_ema_us_ : flops_per_token_ / kSlowestFlops * 1e6;
    return per_step * static_cast<double>(n_tokens);
  };
  // Step { session, sequence, position, n_tokens, tokens[], sampler (first step), end_sequence } -> worker 0
  auto send_step = [&](Active& a, std::vector<int32_t> tokens, int64_t position) -> Status {
    const Request& rq = requests[a.index];
    Generation& g = out[a.index];
    wire::Envelope e;
    e.set_request_id(next_request_++);
    wire::Step* s = e.mutable_step();
    s->set_session(session_);
    s->set_sequence(a.sequence);
    s->set_position(static_cast<uint32_t>(position));
    s->set_n_tokens(static_cast<uint32_t>(tokens.size()));
    for (int32_t t : tokens) s->add_tokens(t);
    if (position == 0) set_sampler(rq.sampling, s->mutable_sampler());
    // The last token this sequence needs: every worker frees it after this step.
    a.end_sent = static_cast<int64_t>(g.tokens.size()) + 1 >= rq.n_predict ||
                 position + static_cast<int64_t>(tokens.size()) >= n_ctx_;
    s->set_end_sequence(a.end_sent);
    const uint64_t envelope = e.ByteSizeLong();
    a.step_bytes = envelope + (n_workers - 1) * (envelope + tokens.size() * n_embd_ * sizeof(float));
    a.pending = std::move(tokens);
    a.position = position;
    a.sent_at = Clock::now();
    const double timeout_us = std::max<double>(options_.min_step_timeout.count() * 1000.0,
                                               kDeadlineFactor * expected_us(static_cast<int64_t>(a.pending.size())));
    a.deadline = a.sent_at + std::chrono::microseconds(static_cast<int64_t>(timeout_us));
    return clients_[0]->send(e);
  };
  // FreeSequence { session, sequence } -> every worker still connected
  auto free_sequence = [&](const Active& a) {
    for (auto& c : clients_) {
      if (c->disconnected()) continue;
      wire::Envelope e;
      e.set_request_id(next_request_++);
      e.mutable_free_sequence()->set_session(session_);
      e.mutable_free_sequence()->set_sequence(a.sequence);
      (void)c->send(e);  // best effort: a worker that is gone has freed it anyway
    }
  };
  auto finish = [&](Active& a, Status status) {
    if (a.done) return;
    a.done = true;
    Generation& g = out[a.index];
    g.status = std::move(status);
    if (a.detok) {
      std::string rest = a.detok->flush();
      if (!rest.empty() && g.status.ok()) {
        g.text += rest;
        on_text(a.index, rest);
      }
    }
    if (a.first_token_seen) g.generate_seconds = std::chrono::duration<double>(Clock::now() - a.first_token_at).count();
    if (!g.status.ok() || !a.end_sent) free_sequence(a);
    by_sequence.erase(a.sequence);
  };
  auto fail_all = [&](const std::string& message) {
    for (Active& a : active) finish(a, Status::Error(message));
  };

  // Start every request.
  for (size_t i = 0; i < requests.size(); ++i) {
    const Request& rq = requests[i];
    Active& a = active[i];
    Generation& g = out[i];
    a.index = i;
    a.sequence = next_sequence_++;
    g.stages.resize(n_workers);
    g.prompt_tokens = rq.prompt_tokens.empty() ? tokenizer_->encode(rq.prompt, vocab.add_bos) : rq.prompt_tokens;
    if (g.prompt_tokens.empty()) g.prompt_tokens.push_back(vocab.bos);
    a.detok = std::make_unique<text::Detokenizer>(*tokenizer_);
    for (int32_t t : g.prompt_tokens) a.detok->push(t);  // not echoed; decides the first piece's leading space
    a.started = Clock::now();
    if (static_cast<int64_t>(g.prompt_tokens.size()) >= n_ctx_) {
      a.done = true;
      g.status = Status::Errorf("the prompt has {} tokens but the context holds {}", g.prompt_tokens.size(), n_ctx_);
      continue;
    }
    if (rq.n_predict <= 0) {
      a.done = true;
      continue;
    }
    by_sequence[a.sequence] = i;
    Status st = send_step(a, g.prompt_tokens, 0);
    if (!st.ok()) finish(a, Status::Errorf("{}: {}", describe(0), st.message()));
  }

  bool probing = false;
  Clock::time_point probe_until{};
  std::vector<bool> probe_answered(n_workers);
  while (!by_sequence.empty()) {
    if (cancelled()) {
      fail_all("interrupted");
      break;
    }
    bool lost = false;
    for (size_t w = 0; w < n_workers && !lost; ++w) {
      if (clients_[w]->disconnected()) {
        fail_all(fmt::format("{}: {}", describe(w), clients_[w]->disconnect_reason()));
        lost = true;
      }
    }
    if (lost) break;
    auto now = Clock::now();
    Clock::time_point earliest = now + milliseconds(100);
    if (probing) {
      earliest = std::min(earliest, probe_until);
    } else {
      for (const auto& [seq, i] : by_sequence) earliest = std::min(earliest, active[i].deadline);
    }

    // A step is overdue: ask every worker whether it still answers, then blame the silent ones.
    if (now >= earliest && !probing) {
      for (size_t w = 0; w < n_workers; ++w) {
        wire::Envelope e;
        e.set_request_id(next_request_++);
        e.mutable_hello()->set_client("lingualinked head (probe)");
        probe_answered[w] = false;
        (void)clients_[w]->send(e);  // a worker we cannot even send to stays silent
      }
      probing = true;
      probe_until = now + std::max(kProbeTimeout, milliseconds(static_cast<int64_t>(2 * step_ema_us_ / 1000)));
      continue;
    }
    if (probing && now >= probe_until) {
      std::string silent;
      for (size_t w = 0; w < n_workers; ++w) {
        if (!probe_answered[w]) silent += (silent.empty() ? "" : ", ") + describe(w);
      }
      std::string why = silent.empty()
                            ? "every worker still answers, so a message was lost or rejected on the way"
                            : silent + " stopped responding";
      for (const auto& [seq, i] : std::map<uint64_t, size_t>(by_sequence)) {
        Active& a = active[i];
        if (silent.empty() && a.deadline > now) continue;
        finish(a, Status::Errorf("sequence {}: no reply within {:.1f} s: {}", a.sequence,
                                 std::chrono::duration<double>(now - a.sent_at).count(), why));
      }
      probing = false;
      continue;
    }

    for (size_t w : poll(std::chrono::duration_cast<milliseconds>(std::max(earliest - now, Clock::duration::zero())))) {
      for (int reads = 0; reads < 64; ++reads) {
        auto r = clients_[w]->receive(milliseconds(0));
        if (!r.ok()) {
          fail_all(fmt::format("{}: {}", describe(w), r.error()));
          break;
        }
        if (!r.value()) break;
        const wire::Envelope& e = r.value()->envelope;
        if (e.has_hello_reply()) {
          probe_answered[w] = true;
          continue;
        }
        if (e.has_error()) {
          const wire::ErrorReply& err = e.error();
          auto it = by_sequence.find(err.sequence());
          if (it != by_sequence.end()) {
            finish(active[it->second], Status::Error(err.message()));
          } else if (err.sequence() == 0) {
            fail_all(err.message());
          }
          continue;
        }
        if (!e.has_token() || e.token().session() != session_) continue;
        const wire::TokenResult& tr = e.token();
        auto it = by_sequence.find(tr.sequence());
        if (it == by_sequence.end()) continue;  // a sequence that already ended
        Active& a = active[it->second];
        Generation& g = out[a.index];
        const Request& rq = requests[a.index];
        const auto received = Clock::now();
        const int32_t token = tr.token();
        if (w != n_workers - 1 || token < 0 || token >= n_vocab_ || tr.timings_size() != static_cast<int>(n_workers)) {
          finish(a, Status::Errorf("{} sent an invalid token result (token {}, {} stage timings)", describe(w), token,
                                   tr.timings_size()));
          continue;
        }
        if (a.first_token_seen) {
          // Decode step statistics.
          const uint64_t rtt = micros(received - a.sent_at);
          step_ema_us_ = step_ema_us_ == 0 ? rtt : 0.8 * step_ema_us_ + 0.2 * rtt;
          g.decode_steps++;
          g.round_trip_us += rtt;
          g.wire_bytes += a.step_bytes + e.ByteSizeLong();
          for (int s = 0; s < tr.timings_size(); ++s) {
            StageStats& st = g.stages[s];
            st.steps++;
            st.compute_us += tr.timings(s).compute_us();
            st.queue_us += tr.timings(s).queue_us();
            st.send_us += tr.timings(s).send_us();
          }
        } else {
          a.first_token_seen = true;
          a.first_token_at = received;
          g.prompt_seconds = std::chrono::duration<double>(received - a.started).count();
        }
        if (!rq.ignore_eos && (token == vocab.eos || token == vocab.bos)) {
          finish(a, Status::Ok());
          continue;
        }
        g.tokens.push_back(token);
        g.token_seconds.push_back(std::chrono::duration<double>(received - began).count());
        std::string piece = a.detok->push(token);
        if (!piece.empty()) {
          g.text += piece;
          on_text(a.index, piece);
        }
        const int64_t position = a.position + static_cast<int64_t>(a.pending.size());
        if (static_cast<int64_t>(g.tokens.size()) >= rq.n_predict || position >= n_ctx_) {
          finish(a, Status::Ok());
          continue;
        }
        Status st = send_step(a, {token}, position);
        if (!st.ok()) finish(a, Status::Errorf("{}: {}", describe(0), st.message()));
      }
    }
  }
  return out;
}

}  // namespace ll::cluster
