// The worker's side of re-planning a live session: Reshape prepares the new segment in the
// background while the old one keeps serving steps, SendKv/KvData move the state of units
// between workers, SwitchSegment makes the prepared segment the live one; and SpeedProbe.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <zmq.hpp>

#include "cluster/request_validation.h"
#include "cluster/sampler_wire.h"
#include "cluster/worker.h"
#include "core/log.h"
#include "graph/graph.h"
#include "profile/speed_probe.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;

// A Reshape names a segment exactly as a LoadSegment does.
wire::LoadSegment as_load(const wire::Reshape& r) {
  wire::LoadSegment l;
  l.set_session(r.session());
  if (r.has_model_path()) l.set_model_path(r.model_path());
  if (r.has_shard_hash()) l.set_shard_hash(r.shard_hash());
  l.set_unit_begin(r.unit_begin());
  l.set_unit_end(r.unit_end());
  l.set_n_ctx(r.n_ctx());
  l.set_next_endpoint(r.next_endpoint());
  l.set_next_public_key(r.next_public_key());
  *l.mutable_allow_keys() = r.allow_keys();
  l.set_send_type(r.send_type());
  l.set_cache_type_k(r.cache_type_k());
  l.set_cache_type_v(r.cache_type_v());
  return l;
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / 1048576.0; }

}  // namespace

void Worker::on_reshape(const net::Incoming& in) {
  const wire::Reshape& r = in.message.envelope().reshape();
  const uint64_t id = r.session(), request_id = in.message.envelope().request_id();
  auto fail = [&](const std::string& why) { reply_error(in.peer, request_id, id, 0, why); };
  auto held = sessions_.find(id);
  if (held != sessions_.end() && held->second->head_key != in.peer_key) {
    return fail(fmt::format("session {} belongs to another head; choose another session id", id));
  }
  if (loading_.count(id) != 0) return fail(fmt::format("session {} is still loading; wait for its LoadReply first", id));
  if (auto p = prepared_.find(id); p != prepared_.end() && p->second.building.valid()) {
    return fail(fmt::format("session {} is still being prepared; wait for its ReshapeReply before reshaping it again", id));
  }
  if (Status st = validate_reshape_fields(r, options_.security.insecure); !st.ok()) return fail(st.message());
  const bool empty = r.unit_begin() == r.unit_end();
  if (!empty && held == sessions_.end()) {
    size_t joining = 0;
    for (const auto& [pid, p] : prepared_) joining += pid != id && sessions_.count(pid) == 0 && p.reshape.unit_end() > p.reshape.unit_begin();
    if (sessions_.size() + joining >= options_.max_sessions) {
      return fail(fmt::format("worker busy: at most {} sessions fit and {} are live or joining; use another worker",
                              options_.max_sessions, sessions_.size() + joining));
    }
  }
  const wire::LoadSegment load = as_load(r);
  LoadFile file;
  if (!empty) {
    auto resolved = resolve_file(load);
    if (!resolved.ok()) return fail(resolved.error());
    file = std::move(resolved).value();
  }

  Prepared p;
  p.head_peer = in.peer;
  p.head_key = in.peer_key;
  p.request_id = request_id;
  p.reshape = r;
  p.unverified_shard = file.unverified_shard;
  p.started = p.last_active = Clock::now();
  if (!empty) {
    net::SecurityOptions next_security;
    next_security.insecure = options_.security.insecure;
    next_security.keys = options_.security.keys;
    p.building = std::async(std::launch::async, &Worker::load_segment, std::move(file), load, threads_,
                            !options_.no_mmap,
                            std::move(next_security));
  }
  prepared_[id] = std::move(p);
  // The new upstream and the senders of KV data connect as soon as the head has the reply.
  roles_.prepare_session(id, in.peer_key, {r.allow_keys().begin(), r.allow_keys().end()});
  sync_admitted();
  if (empty) {
    // ReshapeReply { session, weight_bytes = 0, prepare_seconds = 0 }: nothing to build.
    wire::Envelope e;
    e.set_request_id(request_id);
    e.mutable_reshape_reply()->set_session(id);
    send(in.peer, e);
  }
}

Status Worker::check_prepared_memory(uint64_t id, Prepared& p) {
  const Session& next = *p.session;
  const Session* live = sessions_.count(id) != 0 ? sessions_.at(id).get() : nullptr;
  // Units the live segment maps from the same file are already resident: counted once.
  const graph::Graph g = graph::build_graph(*next.model);
  p.extra_weight_bytes = 0;
  for (int64_t u = next.executor->range().begin; u < next.executor->range().end; ++u) {
    const bool shared = live != nullptr && live->source == next.source && live->executor->range().contains(u);
    if (!shared) p.extra_weight_bytes += g.units[u].weight_bytes;
  }
  uint64_t held = 0;
  for (const auto& [sid, s] : sessions_) held += s->weight_bytes;
  for (const auto& [pid, other] : prepared_) held += pid != id && other.session ? other.extra_weight_bytes : 0;
  if (held + p.extra_weight_bytes <= memory_limit_) return Status::Ok();
  return Status::Errorf(
      "worker busy: the new segment of session {} ({}) needs {:.1f} MiB of weights on top of the {:.1f} MiB that "
      "live and prepared segments hold, beyond the memory limit of {:.1f} MiB; plan fewer units for this worker",
      id, model::describe_units(next.model->hparams(), next.executor->range()), mib(p.extra_weight_bytes), mib(held),
      mib(memory_limit_));
}

// ReshapeReply { session, weight_bytes, prepare_seconds } once the segment is built and fits.
void Worker::finish_prepares() {
  std::erase_if(abandoned_builds_, [](auto& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  for (auto it = prepared_.begin(); it != prepared_.end();) {
    Prepared& p = it->second;
    if (!p.building.valid() || p.building.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    const uint64_t id = it->first;
    auto built = p.building.get();
    if (built.ok() && !p.unverified_shard.empty()) cache_.mark_verified(p.unverified_shard);
    Status st = built.ok() ? Status::Ok() : built.status();
    if (st.ok()) {
      p.session = std::move(built).value();
      st = check_prepared_memory(id, p);
    }
    if (!st.ok()) {
      reply_error(p.head_peer, p.request_id, id, 0, st.message());
      roles_.abort_prepared(id, sessions_.count(id) != 0);
      sync_admitted();
      it = prepared_.erase(it);
      continue;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - p.started).count();
    log::info(options_.name, "session {}: units {}..{} ({:.1f} MiB, {:.1f} MiB new) prepared in {:.2f} s", id,
              p.reshape.unit_begin(), p.reshape.unit_end() - 1, mib(p.session->weight_bytes), mib(p.extra_weight_bytes),
              seconds);
    wire::Envelope e;
    e.set_request_id(p.request_id);
    wire::ReshapeReply* r = e.mutable_reshape_reply();
    r->set_session(id);
    r->set_weight_bytes(p.session->weight_bytes);
    r->set_prepare_seconds(seconds);
    send(p.head_peer, e);
    ++it;
  }
}

Result<net::Client*> Worker::kv_link(const std::string& endpoint, const std::string& public_key) {
  std::unique_ptr<net::Client>& link = kv_links_[endpoint + "|" + public_key];
  if (link && link->disconnected()) link.reset();
  if (!link) {
    net::SecurityOptions sec;
    sec.insecure = options_.security.insecure;
    sec.keys = options_.security.keys;
    LL_ASSIGN_OR_RETURN(link, net::Client::connect(endpoint, public_key, sec));
  }
  return link.get();
}

// For every live sequence and every unit of the range with state:
//   KvData { session, sequence, unit, length, bytes = length * (K row + V row bytes), cache_type_k,
//            cache_type_v } + [K rows, then V rows, in the cache types]                            attention
//   KvData { session, sequence, unit, length, sampler }                                                  head
// a range without state sends KvData { session, sequence, unit = unit_begin, length } (the sequence's
// length alone), and the transfer ends with KvData { session, last, units_sent } -> destination.
void Worker::on_send_kv(const net::Incoming& in) {
  const wire::SendKv& r = in.message.envelope().send_kv();
  const uint64_t id = r.session(), request_id = in.message.envelope().request_id();
  auto fail = [&](const std::string& why) { reply_error(in.peer, request_id, id, 0, why); };
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return fail(fmt::format("unknown session {}; it has no units to send", id));
  Session& s = *it->second;
  const model::HParams& hp = s.model->hparams();
  if (Status st = validate_send_kv(r, model::unit_count(hp), options_.security.insecure); !st.ok()) return fail(st.message());
  const model::UnitRange range{r.unit_begin(), r.unit_end()};
  if (range.begin < s.executor->range().begin || range.end > s.executor->range().end) {
    return fail(fmt::format("SendKv names {}, but this worker runs {} of session {}", model::describe_units(hp, range),
                            model::describe_units(hp, s.executor->range()), id));
  }
  auto link = kv_link(r.to_endpoint(), r.to_public_key());
  if (!link.ok()) return fail(fmt::format("cannot reach {} to send KV data: {}", r.to_endpoint(), link.error()));
  s.last_active = Clock::now();
  bool stateful = false;
  for (int64_t u = range.begin; u < range.end; ++u) {
    const model::UnitKind kind = model::unit_at(hp, u).kind;
    stateful = stateful || kind == model::UnitKind::Attention || kind == model::UnitKind::Head;
  }
  uint32_t sent = 0;
  auto send_unit = [&](uint64_t seq, int64_t unit, const wire::SamplerState* sampler,
                       const std::vector<uint8_t>* kv) -> Status {
    wire::Envelope e;
    e.set_request_id(request_id);
    wire::KvData* d = e.mutable_kv_data();
    d->set_session(id);
    d->set_sequence(seq);
    d->set_unit(static_cast<uint32_t>(unit));
    d->set_length(static_cast<uint32_t>(s.executor->sequence_length(seq)));
    std::vector<zmq::message_t> frames;
    if (sampler != nullptr) *d->mutable_sampler() = *sampler;
    if (kv != nullptr) {
      d->set_bytes(kv->size());
      d->set_cache_type_k(model::kv_type_name(s.executor->kv_types().k));
      d->set_cache_type_v(model::kv_type_name(s.executor->kv_types().v));
      frames.emplace_back(kv->data(), kv->size());
    }
    LL_RETURN_IF_ERROR(link.value()->send(e, std::move(frames)));
    ++sent;
    return Status::Ok();
  };
  for (const uint64_t seq : s.executor->sequences()) {
    Status st;
    if (!stateful) st = send_unit(seq, range.begin, nullptr, nullptr);
    for (int64_t u = range.begin; st.ok() && u < range.end; ++u) {
      const model::UnitKind kind = model::unit_at(hp, u).kind;
      if (kind == model::UnitKind::Attention) {
        auto kv = s.executor->export_kv(seq, u);
        st = kv.ok() ? send_unit(seq, u, nullptr, &kv.value()) : kv.status();
      } else if (kind == model::UnitKind::Head) {
        auto sq = s.sequences.find(seq);
        if (sq == s.sequences.end() || !sq->second.sampler) continue;  // no step has reached the sampler yet
        wire::SamplerState state;
        sampler_state_to_wire(sq->second.sampler->state(), &state);
        st = send_unit(seq, u, &state, nullptr);
      }
    }
    if (!st.ok()) return fail(fmt::format("sending the KV of sequence {} to {} failed: {}", seq, r.to_endpoint(), st.message()));
  }
  wire::Envelope last;
  last.set_request_id(request_id);
  last.mutable_kv_data()->set_session(id);
  last.mutable_kv_data()->set_last(true);
  last.mutable_kv_data()->set_units_sent(sent);
  if (Status st = link.value()->send(last); !st.ok()) {
    return fail(fmt::format("sending the KV of session {} to {} failed: {}", id, r.to_endpoint(), st.message()));
  }
}

// KvData -> imported into the prepared segment; after `last`:
//   KvReceived { session, from_key, units, bytes } -> the head that sent the Reshape
void Worker::on_kv_data(net::Incoming& in) {
  const wire::KvData& d = in.message.envelope().kv_data();
  const uint64_t id = d.session(), request_id = in.message.envelope().request_id();
  auto it = prepared_.find(id);
  if (it == prepared_.end()) {
    return reply_error(in.peer, request_id, id, d.sequence(),
                       fmt::format("no Reshape of session {} is prepared here to receive its KV data", id));
  }
  Prepared& p = it->second;
  // The sender is a worker; the head that asked for the transfer hears of problems.
  auto fail = [&](const std::string& why) { reply_error(p.head_peer, request_id, id, d.sequence(), why); };
  if (p.building.valid()) {
    return fail(fmt::format("session {} is still being prepared; send its KV data after the ReshapeReply", id));
  }
  if (!p.session) return fail(fmt::format("the prepared segment of session {} holds no units to receive KV data", id));
  exec::SegmentExecutor& ex = *p.session->executor;
  const model::HParams& hp = p.session->model->hparams();
  auto& frames = in.message.frames;
  Prepared::Transfer& t = p.transfers[in.peer_key];
  if (d.last()) {
    const Prepared::Transfer done = t;
    p.transfers.erase(in.peer_key);
    if (!frames.empty() || d.bytes() != 0) return fail("the last KvData of a transfer carries no frame");
    if (done.units != d.units_sent()) {
      return fail(fmt::format("received {} of the {} KV units sent for session {}; send them again", done.units,
                              d.units_sent(), id));
    }
    wire::Envelope e;
    e.set_request_id(request_id);
    wire::KvReceived* r = e.mutable_kv_received();
    r->set_session(id);
    r->set_from_key(in.peer_key);
    r->set_units(done.units);
    r->set_bytes(done.bytes);
    send(p.head_peer, e);
    return;
  }
  if (Status st = validate_kv_data(d, frames, {.hp = hp, .range = ex.range(), .n_ctx = ex.n_ctx(), .kv_types = ex.kv_types()}); !st.ok()) {
    return fail(st.message());
  }
  if (!ex.has_sequence(d.sequence()) && ex.sequences().size() >= options_.max_sequences) {
    return fail(fmt::format("too many sequences in session {} ({})", id, options_.max_sequences));
  }
  const model::UnitKind kind = model::unit_at(hp, d.unit()).kind;
  Status st;
  if (kind == model::UnitKind::Attention) {
    st = ex.import_kv(d.sequence(), d.unit(), d.length(),
                      {static_cast<const uint8_t*>(frames[0].data()), frames[0].size()});
    if (st.ok()) p.imported[d.sequence()].insert(d.unit());
  } else {
    st = ex.ensure_sequence(d.sequence(), d.length());
    if (st.ok() && kind == model::UnitKind::Head) p.samplers[d.sequence()] = sampler_state_from_wire(d.sampler());
  }
  if (!st.ok()) return fail(fmt::format("KV data of sequence {} unit {}: {}", d.sequence(), d.unit(), st.message()));
  ++t.units;
  t.bytes += d.bytes();
}

Status Worker::check_switch_complete(uint64_t id, const Prepared& p) const {
  const Session* live = sessions_.count(id) != 0 ? sessions_.at(id).get() : nullptr;
  const exec::SegmentExecutor& next = *p.session->executor;
  const model::HParams& hp = p.session->model->hparams();
  std::set<uint64_t> seqs;
  for (uint64_t seq : next.sequences()) seqs.insert(seq);
  if (live != nullptr) {
    for (uint64_t seq : live->executor->sequences()) seqs.insert(seq);
  }
  for (const uint64_t seq : seqs) {
    const bool live_has = live != nullptr && live->executor->has_sequence(seq);
    for (int64_t u = next.range().begin; u < next.range().end; ++u) {
      const model::UnitKind kind = model::unit_at(hp, u).kind;
      if (kind != model::UnitKind::Attention && kind != model::UnitKind::Head) continue;
      // The live segment's own units keep their state through adopt (and its samplers).
      bool has = live_has && live->executor->range().contains(u);
      if (kind == model::UnitKind::Attention) {
        auto imported = p.imported.find(seq);
        has = has || (imported != p.imported.end() && imported->second.count(u) != 0);
      } else {
        has = has || p.samplers.count(seq) != 0;
      }
      if (!has) {
        return Status::Errorf("cannot switch session {}: sequence {} has no state for unit {} ({}); have the worker "
                              "that holds it send it (SendKv), or abort the switch",
                              id, seq, u, model::unit_name(model::unit_at(hp, u)));
      }
    }
  }
  return Status::Ok();
}

// SwitchReply { session, aborted } once the prepared segment runs (or has been dropped).
void Worker::on_switch(const net::Incoming& in) {
  const wire::SwitchSegment& r = in.message.envelope().switch_segment();
  const uint64_t id = r.session(), request_id = in.message.envelope().request_id();
  auto fail = [&](const std::string& why) { reply_error(in.peer, request_id, id, 0, why); };
  auto reply = [&](bool aborted) {
    wire::Envelope e;
    e.set_request_id(request_id);
    e.mutable_switch_reply()->set_session(id);
    e.mutable_switch_reply()->set_aborted(aborted);
    send(in.peer, e);
  };
  auto it = prepared_.find(id);
  auto live = sessions_.find(id);
  if (it != prepared_.end() && it->second.head_key != in.peer_key) {
    return fail(fmt::format("session {} belongs to another head, which alone may switch it", id));
  }
  if (r.abort()) {
    if (it != prepared_.end()) discard_prepared(it);
    return reply(true);
  }
  if (it == prepared_.end()) {
    return fail(fmt::format("nothing is prepared for session {}; send a Reshape and wait for its ReshapeReply first", id));
  }
  Prepared& p = it->second;
  if (p.building.valid()) {
    return fail(fmt::format("session {} is still being prepared; wait for its ReshapeReply before switching", id));
  }
  if (!p.session) {
    if (live != sessions_.end()) drop_session(live, "switched to no units");
    roles_.end_session(id);
    sync_admitted();
    prepared_.erase(it);
    return reply(false);
  }
  if (Status st = check_switch_complete(id, p); !st.ok()) return fail(st.message());
  // A next worker that refused the prepared link (it had not allowed this worker yet: reshaped
  // out of order) has allowed it by now.
  if (p.session->next && p.session->next->disconnected()) {
    net::SecurityOptions sec;
    sec.insecure = options_.security.insecure;
    sec.keys = options_.security.keys;
    auto again = net::Client::connect(p.reshape.next_endpoint(), p.reshape.next_public_key(), sec);
    if (!again.ok()) return fail(fmt::format("cannot switch session {}: {}", id, again.error()));
    p.session->next = std::move(again).value();
  }
  std::unique_ptr<Session> next = std::move(p.session);
  exec::SegmentExecutor& ex = *next->executor;
  if (live != sessions_.end()) {
    if (Status st = ex.adopt(*live->second->executor); !st.ok()) {
      p.session = std::move(next);
      return fail(fmt::format("cannot switch session {}: {}", id, st.message()));
    }
  }
  for (const uint64_t seq : ex.sequences()) {
    Sequence& sq = next->sequences[seq];
    if (!ex.has_head()) continue;
    if (auto imported = p.samplers.find(seq); imported != p.samplers.end()) {
      sq.sampler = text::Sampler::restore(imported->second, static_cast<int32_t>(ex.n_vocab()));
    } else if (live != sessions_.end()) {
      auto old = live->second->sequences.find(seq);
      if (old != live->second->sequences.end()) sq.sampler = old->second.sampler;
    }
  }
  next->id = id;
  next->head_peer = in.peer;
  next->head_key = live != sessions_.end() ? live->second->head_key : p.head_key;
  if (live != sessions_.end()) next->freed = std::move(live->second->freed);
  next->last_active = Clock::now();
  log::info(options_.name, "session {}: switched to {} with {} sequence(s){}", id,
            model::describe_units(next->model->hparams(), ex.range()), next->sequences.size(),
            p.reshape.next_endpoint().empty() ? ", last segment" : ", next " + p.reshape.next_endpoint());
  sessions_[id] = std::move(next);
  prepared_.erase(it);
  roles_.switch_session(id);
  sync_admitted();
  reply(false);
}

void Worker::discard_prepared(std::map<uint64_t, Prepared>::iterator it) {
  roles_.abort_prepared(it->first, sessions_.count(it->first) != 0);
  sync_admitted();
  if (it->second.building.valid()) abandoned_builds_.push_back(std::move(it->second.building));
  prepared_.erase(it);
}

// SpeedProbe { repetitions } -> SpeedProbeReply { seconds }
void Worker::on_speed_probe(const net::Incoming& in) {
  const wire::SpeedProbe& r = in.message.envelope().speed_probe();
  if (Status st = validate_speed_probe(r); !st.ok()) {
    return reply_error(in.peer, in.message.envelope().request_id(), 0, 0, st.message());
  }
  if (!probe_pool_) probe_pool_ = std::make_unique<ThreadPool>(threads_);
  wire::Envelope e;
  e.set_request_id(in.message.envelope().request_id());
  e.mutable_speed_probe_reply()->set_seconds(profile::probe_speed(*probe_pool_, static_cast<int>(r.repetitions())));
  send(in.peer, e);
}

}  // namespace ll::cluster
