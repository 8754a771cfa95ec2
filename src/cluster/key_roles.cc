#include "cluster/key_roles.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ll::cluster {
namespace {

// The message's name in wire.proto ("LoadSegment"), for refusals.
std::string kind(const wire::Envelope& e) {
  const auto* field = wire::Envelope::descriptor()->FindFieldByNumber(static_cast<int>(e.body_case()));
  return field != nullptr && field->message_type() != nullptr ? field->message_type()->name() : "an empty message";
}

std::string short_key(const std::string& key) { return key.size() > 8 ? key.substr(0, 8) + "..." : key; }

}  // namespace

KeyRoles::KeyRoles(std::set<std::string> heads, bool insecure, std::chrono::milliseconds probe_lease)
    : heads_(std::move(heads)), insecure_(insecure), probe_lease_(probe_lease) {}

std::string KeyRoles::describe(const std::string& key) const {
  std::vector<uint64_t> sessions;
  for (const auto& [id, s] : sessions_) {
    if (s.peers.count(key) != 0 || s.prepared.count(key) != 0) sessions.push_back(id);
  }
  bool probes = false;
  for (const auto& [head, c] : contacts_) probes = probes || c.probe_peers.count(key) != 0;
  if (!sessions.empty()) {
    return fmt::format("key {} is a peer of session {} and may only send its steps{}{}", short_key(key),
                       fmt::join(sessions, ", "), prepared_anywhere(key) ? " and KV data" : "",
                       probes ? " and link probes" : "");
  }
  if (probes) return fmt::format("key {} is a peer for link probes and may only send link probes (Ping)", short_key(key));
  return fmt::format("key {} has no rights on this worker (any more)", short_key(key));
}

Status KeyRoles::check(const std::string& key, const wire::Envelope& e) const {
  if (insecure_ || heads_.count(key) != 0) return Status::Ok();
  if (e.has_step()) {
    auto it = sessions_.find(e.step().session());
    if (it != sessions_.end() && (it->second.peers.count(key) != 0 || it->second.prepared.count(key) != 0)) {
      return Status::Ok();
    }
    return Status::Errorf("{}; it may not send steps of session {}", describe(key), e.step().session());
  }
  if (e.has_kv_data()) {
    auto it = sessions_.find(e.kv_data().session());
    if (it != sessions_.end() && it->second.prepared.count(key) != 0) return Status::Ok();
    return Status::Errorf("{}; it may not send KV data of session {} (only the keys of its Reshape may)", describe(key),
                          e.kv_data().session());
  }
  if (e.has_ping()) {
    for (const auto& [head, c] : contacts_) {
      if (c.probe_peers.count(key) != 0) return Status::Ok();
    }
  }
  return Status::Errorf("{}; only keys the owner allowed may send {}", describe(key), kind(e));
}

void KeyRoles::heard_from(const std::string& head, Clock::time_point now) {
  if (auto it = contacts_.find(head); it != contacts_.end()) it->second.last_heard = now;
}

void KeyRoles::set_probe_peers(const std::string& head, const std::vector<std::string>& peers, Clock::time_point now) {
  HeadContact& c = contacts_[head];
  c.last_heard = now;
  c.probe_peers = {peers.begin(), peers.end()};
  ++version_;
}

void KeyRoles::add_session(uint64_t session, const std::string& head, const std::vector<std::string>& peers) {
  sessions_[session] = SessionPeers{head, {peers.begin(), peers.end()}, {}};
  ++version_;
}

void KeyRoles::end_session(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  const std::string head = it->second.head;
  sessions_.erase(it);
  bool head_has_more = false;
  for (const auto& [id, s] : sessions_) head_has_more = head_has_more || s.head == head;
  if (!head_has_more) contacts_.erase(head);
  ++version_;
}

void KeyRoles::prepare_session(uint64_t session, const std::string& head, const std::vector<std::string>& peers) {
  SessionPeers& s = sessions_.try_emplace(session, SessionPeers{head, {}, {}}).first->second;
  s.prepared = {peers.begin(), peers.end()};
  ++version_;
}

void KeyRoles::switch_session(uint64_t session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  it->second.peers = std::move(it->second.prepared);
  it->second.prepared.clear();
  ++version_;
}

void KeyRoles::abort_prepared(uint64_t session, bool held) {
  if (!held) {
    end_session(session);
    return;
  }
  if (auto it = sessions_.find(session); it != sessions_.end()) it->second.prepared.clear();
  ++version_;
}

bool KeyRoles::prepared_anywhere(const std::string& key) const {
  for (const auto& [id, s] : sessions_) {
    if (s.prepared.count(key) != 0) return true;
  }
  return false;
}

void KeyRoles::expire(Clock::time_point now) {
  for (auto it = contacts_.begin(); it != contacts_.end();) {
    if (now - it->second.last_heard >= probe_lease_) {
      it = contacts_.erase(it);
      ++version_;
    } else {
      ++it;
    }
  }
}

std::set<std::string> KeyRoles::admitted() const {
  std::set<std::string> keys;
  for (const auto& [head, c] : contacts_) keys.insert(c.probe_peers.begin(), c.probe_peers.end());
  for (const auto& [id, s] : sessions_) {
    keys.insert(s.peers.begin(), s.peers.end());
    keys.insert(s.prepared.begin(), s.prepared.end());
  }
  for (const std::string& head : heads_) keys.erase(head);
  return keys;
}

}  // namespace ll::cluster
