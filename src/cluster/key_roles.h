#pragma once
// Who may send what to a worker.
//  - Heads: the keys its owner allowed when the worker started (--allow, --allow-file). They
//    may send every message, and alone may send control messages (Hello, ShardData,
//    LoadSegment, ProfileRequest, FreeSequence, EndSession, Reshape, SendKv, SwitchSegment,
//    SpeedProbe, KeepAlive).
//  - Step peers: keys a head names in LoadSegment.allow_keys. They may send the Steps of that
//    session only, until the session ends (ended by its head, reclaimed, or replaced by a load
//    that names other keys).
//  - Reshape peers: keys a head names in Reshape.allow_keys. From the Reshape on they may send
//    the Steps and the KvData of that session only; at the switch they become its step peers
//    (the old ones lose their rights), and an abort takes their rights away again.
//  - Probe peers: keys a head names in Hello.peer_keys. They may send link probes (Ping) only,
//    until that head's next Hello names others, the head ends its last session here, or the
//    head has sent nothing here for `probe_lease`.
// A peer never introduces keys: its Hello and LoadSegment are control messages and refused.
// Insecure workers see no keys and cannot tell peers from heads: there, everything is allowed.
// Threading: not thread-safe; the worker's serving thread alone uses it.
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "wire.pb.h"

namespace ll::cluster {

class KeyRoles {
 public:
  using Clock = std::chrono::steady_clock;
  KeyRoles(std::set<std::string> heads, bool insecure, std::chrono::milliseconds probe_lease);

  // Ok, or why `key` may not send `e` (for the ErrorReply).
  Status check(const std::string& key, const wire::Envelope& e) const;

  // Every message of a head renews the rights of its probe peers.
  void heard_from(const std::string& head, Clock::time_point now);
  void set_probe_peers(const std::string& head, const std::vector<std::string>& peers, Clock::time_point now);
  void add_session(uint64_t session, const std::string& head, const std::vector<std::string>& peers);
  void end_session(uint64_t session);
  // A Reshape of `session` (which the worker may not hold yet) names `peers`.
  void prepare_session(uint64_t session, const std::string& head, const std::vector<std::string>& peers);
  // The prepared peers become the session's step peers.
  void switch_session(uint64_t session);
  // The prepared peers lose their rights; a session the worker never held is forgotten.
  void abort_prepared(uint64_t session, bool held);
  // Drops the probe peers of heads silent for the probe lease.
  void expire(Clock::time_point now);

  // The keys besides the heads' that may connect now (the ZAP allow-list's other part).
  std::set<std::string> admitted() const;
  // Changes whenever admitted() may have changed.
  uint64_t version() const { return version_; }

 private:
  struct HeadContact {
    Clock::time_point last_heard{};
    std::set<std::string> probe_peers;
  };
  struct SessionPeers {
    std::string head;
    std::set<std::string> peers;
    std::set<std::string> prepared;  // from a Reshape, until its switch or abort
  };
  std::string describe(const std::string& key) const;
  bool prepared_anywhere(const std::string& key) const;

  std::set<std::string> heads_;
  bool insecure_;
  std::chrono::milliseconds probe_lease_;
  std::map<std::string, HeadContact> contacts_;  // by head key; only heads that sent a Hello
  std::map<uint64_t, SessionPeers> sessions_;
  uint64_t version_ = 0;
};

}  // namespace ll::cluster
