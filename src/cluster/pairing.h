#pragma once
// Pairing a worker with a head by a one-time code (cluster/pairing_code.h for the code and its
// cryptography; wire.proto's Pair* messages for the exchange).
//
// The head (`lingualinked pair`) listens with the CURVE server key the codes' link id names and
// admits any client key; what a client may do there is only pair, and only with a code:
//   - a request names its code's slot; a used, expired or revoked code is refused at once;
//   - the worker's MAC must match before the head says anything that depends on the secret, so
//     a guesser learns nothing it could test offline; a wrong MAC is refused and counted, and
//     after `max_wrong_codes` of them every code of the run is revoked;
//   - a code is used once: the worker's key, its beacon-signing key, address, threads and memory
//     are handed to `on_paired` (which stores them), and the head answers with its own MAC.
// Every refusal is logged (rate-limited) and answered with an ErrorReply naming the reason.
// Threading: a PairingServer belongs to one thread; join_head blocks its caller.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cluster/pairing_code.h"
#include "cluster/remembered.h"
#include "core/log_limiter.h"
#include "core/status.h"
#include "net/transport.h"
#include "wire.pb.h"

namespace ll::cluster {

struct PairingOptions {
  std::string listen = "tcp://0.0.0.0:7071";
  std::string address;  // the IPv4 address written into the codes; empty: the listen address, else this machine's
  size_t codes = 1;     // 1..16, one per device to pair
  std::chrono::milliseconds ttl{std::chrono::minutes(5)};
  size_t max_wrong_codes = 3;
  net::KeyPair head_keys;  // the head's long-term key pair
  std::string head_name;
  std::function<Status(const PairedDevice&)> on_paired;
  std::function<void(const std::string&)> log;  // default: stderr
};

class PairingServer {
 public:
  static Result<std::unique_ptr<PairingServer>> start(PairingOptions options);
  const std::vector<PairingCode>& codes() const { return codes_; }
  const std::string& endpoint() const { return server_->endpoint(); }
  // Handles what arrives within `timeout`.
  Status poll(std::chrono::milliseconds timeout);
  // Every code used, expired or revoked.
  bool finished() const;
  size_t paired() const { return paired_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    Clock::time_point since;
    uint32_t slot = 0;
    wire::PairRequest request;
    std::string head_nonce;
  };
  PairingServer(PairingOptions options, std::unique_ptr<net::Server> server, std::vector<PairingCode> codes);
  // Ok, or why the code in `slot` can no longer be used.
  Status usable(uint32_t slot) const;
  void on_request(const net::Incoming& in);
  void on_proof(const net::Incoming& in);
  void refuse(const net::Incoming& in, const std::string& why);

  PairingOptions options_;
  std::unique_ptr<net::Server> server_;
  std::vector<PairingCode> codes_;
  std::vector<bool> used_;
  Clock::time_point expires_;
  size_t wrong_ = 0;
  size_t paired_ = 0;
  bool revoked_ = false;
  std::map<std::string, Pending> pending_;  // by worker key
  LogLimiter refusals_;
};

struct JoinRequest {
  std::string name;
  uint16_t port = 0;  // where the worker serves heads
  uint32_t threads = 0;
  uint64_t memory_limit = 0;
  std::chrono::milliseconds timeout{15000};  // for each answer of the head
};

struct JoinedHead {
  std::string public_key;
  std::string name;
};

// The worker's side: proves it holds the code and checks that the head does too.
Result<JoinedHead> join_head(const PairingCode& code, const net::KeyPair& worker_keys, const JoinRequest& request);

}  // namespace ll::cluster
