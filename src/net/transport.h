#pragma once
// ZeroMQ transport. A Server (ROUTER, bound) serves many peers; a Client (DEALER, connected)
// talks to one server. Every link is CURVE-encrypted and authenticated unless `insecure`,
// which is only allowed on loopback endpoints. The server accepts only clients whose public
// keys are in its allow-list (checked by a ZAP handler). Message = one Envelope frame plus
// tensor frames; sizes are checked against limits before anything is allocated.
// This header needs no protobuf: the Envelope is only declared here, and the code that builds
// or reads envelopes includes the wire contract ("wire.pb.h") itself.
// Threading: a Server or Client (and its socket()) belongs to one thread at a time, as ZeroMQ
// sockets do; only Server::allow and the rejected() counters may be called from any thread.
// Liveness: heartbeats every 0.5 s; a link silent for 2 s after one is dropped, so a frozen
// or cut peer is noticed within 2.5 s. Sends wait at most Limits::send_timeout for room in the
// peer's queue (100 messages), then fail.
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/keys.h"

namespace ll::wire {
class Envelope;
}  // namespace ll::wire

namespace ll::net {

struct Limits {
  size_t max_envelope_bytes = 1 << 20;          // 1 MiB
  size_t max_frame_bytes = size_t{1} << 30;     // one tensor frame
  size_t max_frames = 4;                         // tensor frames after the envelope
  std::chrono::milliseconds send_timeout{5000};  // send fails when the peer's queue stays full this long
};

// The Envelope is held behind a pointer so that this header needs only its declaration. A
// moved-from Message may only be destroyed or assigned to.
struct Message {
  Message();  // an empty Envelope, no frames
  Message(Message&&) noexcept;
  Message& operator=(Message&&) noexcept;
  ~Message();

  wire::Envelope& envelope() { return *envelope_; }
  const wire::Envelope& envelope() const { return *envelope_; }

  std::vector<zmq::message_t> frames;  // tensor frames, sizes validated against the envelope by the caller

 private:
  std::unique_ptr<wire::Envelope> envelope_;
};

struct Incoming {
  std::string peer;  // ROUTER routing id of the sender (new on every reconnection of that sender)
  Message message;
  std::string peer_key{};      // Z85 public key the sender authenticated with (empty when insecure)
  std::string peer_address{};  // IP address of the sender, for logs
};

struct SecurityOptions {
  bool insecure = false;           // plain text; refused unless the endpoint is loopback
  KeyPair keys;                    // our own key pair (server: its identity; client: its identity)
  std::set<std::string> allowed;   // server only: client public keys accepted
  bool any_client = false;         // server only: every client key accepted (a pairing listener,
                                   // whose clients prove themselves inside the encrypted link)
};

// Process-wide ZeroMQ context.
zmq::context_t& context();

// Encodes an Envelope (sets version) + frames; decoding checks version, size limits, parse errors.
std::vector<zmq::message_t> encode(const wire::Envelope& e, std::vector<zmq::message_t> frames);
Result<Message> decode(std::vector<zmq::message_t>& parts, const Limits& limits);
// Checks that the tensor frames have exactly the declared sizes: `expect_frame_bytes(m, {step.hidden_bytes()})`.
Status expect_frame_bytes(const Message& message, std::initializer_list<uint64_t> bytes);

class Server {
 public:
  static Result<std::unique_ptr<Server>> bind(const std::string& endpoint, SecurityOptions security,
                                              Limits limits = {});
  ~Server();
  void allow(const std::string& public_key);     // add a client key at run time (thread-safe)
  void disallow(const std::string& public_key);  // later handshakes with it fail; open connections stay
  const std::string& endpoint() const;        // the resolved endpoint (port 0 -> actual port)
  // Waits up to `timeout` for a message. A malformed or oversized message is logged and
  // dropped (returns nullopt with `rejected` incremented), never an exception. A frame larger
  // than both max_envelope_bytes and max_frame_bytes never arrives: libzmq drops that peer's
  // connection before reading it (not counted in `rejected`).
  Result<std::optional<Incoming>> receive(std::chrono::milliseconds timeout);
  // Fails at once when `peer` is not connected (any more).
  Status send(const std::string& peer, const wire::Envelope& e, std::vector<zmq::message_t> frames = {});
  uint64_t rejected() const;
  zmq::socket_t& socket();  // for polling together with other sockets

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Client {
 public:
  // server_public_key pins the server's identity (ignored when insecure).
  static Result<std::unique_ptr<Client>> connect(const std::string& endpoint, const std::string& server_public_key,
                                                 SecurityOptions security, Limits limits = {});
  ~Client();
  // Queued until the connection is up, so sending right after connect() is fine.
  Status send(const wire::Envelope& e, std::vector<zmq::message_t> frames = {});
  Result<std::optional<Message>> receive(std::chrono::milliseconds timeout);
  // True once the connection is known to be lost (peer closed, heartbeat timeout, handshake refused);
  // it stays true: make a new Client to try again.
  bool disconnected();
  std::string disconnect_reason();  // why disconnected() turned true; empty while connected
  // True once a connection to the server was made; a connection never made (nothing listening)
  // makes disconnected() true at the first failed attempt.
  bool ever_connected();
  uint64_t rejected() const;        // malformed or oversized replies dropped
  const std::string& endpoint() const;
  zmq::socket_t& socket();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

bool is_loopback_endpoint(const std::string& endpoint);

}  // namespace ll::net
