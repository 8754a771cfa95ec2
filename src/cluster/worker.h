#pragma once
// The worker daemon: serves one device's share of a model to heads over a net::Server.
//
//   head ── Hello ──────────────► worker        HelloReply: threads, SIMD target, memory limit, cached shards
//   head ── ShardData* ─────────► worker        streamed shard chunks (acknowledged by ShardData echoes)
//   head ── LoadSegment ────────► worker        LoadReply, or ErrorReply (once the model is read, in the background)
//   head/previous worker ─ Step ► worker ─ Step (hidden frame) ► next worker, or TokenResult ► head
//   head ── FreeSequence ───────► worker        frees KV cache and sampler
//   head ── ProfileRequest ─────► worker        ProfileReply: per-unit times (cached), links to peers
//   peer ── Ping + [payload] ───► worker        Pong (link probes)
//   head ── EndSession ─────────► worker        frees the session; echoed
//   head ── Reshape ────────────► worker        ReshapeReply once the new segment is prepared (in the background)
//   head ── SendKv ─────────────► worker ─ KvData* ► destination worker ─ KvReceived ► head
//   head ── SwitchSegment ──────► worker        SwitchReply: the prepared segment runs from now on (or is dropped)
//   head ── SpeedProbe ─────────► worker        SpeedProbeReply: median seconds of a fixed kernel workload
//   head ── KeepAlive ──────────► worker        (no reply) its session stays live
//
// Keys have roles (see KeyRoles): only the owner's allowed keys command the worker; the peers a
// head introduces may only send steps of their session, or link probes. A session holds its
// place while it is live: a new load that finds no room takes only the loading head's own
// sessions, and is refused as busy otherwise. A session that nothing was sent for (a step, or
// its head's KeepAlive) for `session_lease` is freed by the serving loop: its head died or lost
// its link.
//
// Messages are processed one at a time in arrival order, so the steps of many sequences
// interleave. Loading a segment is the exception: its model is read and its executor built on
// a thread of its own, so the worker keeps answering while it loads; the session is installed
// and the head answered back on the serving thread. Model files are opened only inside the
// directories the owner allowed (ModelAccess). A bad request is answered with an ErrorReply to the head of its session (or to
// its sender) and never ends the worker; sessions outlive their head's connection.
// Threading: serve() runs on one thread, which alone touches the sessions and sockets; the
// accessors read what create() fixed and may be called from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/freed_sequences.h"
#include "cluster/key_roles.h"
#include "cluster/model_access.h"
#include "cluster/shard_cache.h"
#include "core/thread_pool.h"
#include "core/log_limiter.h"
#include "core/status.h"
#include "exec/segment_executor.h"
#include "model/model.h"
#include "net/transport.h"
#include "text/sampler.h"
#include "wire.pb.h"

namespace ll::cluster {

struct WorkerOptions {
  std::string listen = "tcp://0.0.0.0:7070";
  std::string name;              // for logs and HelloReply (default: the endpoint)
  int threads = 0;               // 0: all hardware threads
  uint64_t memory_limit = 0;     // bytes; 0: the free memory. Never more than the free memory or the cgroup's limit.
  net::SecurityOptions security;
  std::string cache_dir;         // default: ShardCache::default_dir()
  std::vector<std::string> model_dirs;  // where heads may name model files; default: cache_dir and the working directory
  size_t max_sessions = 4;       // a load beyond them waits until one ends or falls silent (busy)
  size_t max_sequences = 256;    // per session
  // A session without any message for it (from its head or its step peers) for this long is
  // freed; also how long a silent head's probe peers keep their rights. 1 ms .. 1 day.
  std::chrono::milliseconds session_lease{30000};
  bool no_mmap = false;          // segments' weights read into memory (model::LoadOptions::mmap)
};


class Worker {
 public:
  static Result<std::unique_ptr<Worker>> create(WorkerOptions options);
  ~Worker();

  const std::string& endpoint() const { return server_->endpoint(); }
  const std::string& public_key() const { return options_.security.keys.public_key; }
  uint64_t memory_limit() const { return memory_limit_; }
  int threads() const { return threads_; }

  // Serves until `stop` is set (checked several times a second). Returns an error only when
  // the listening socket itself fails.
  Status serve(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;
  struct Sequence {
    std::optional<text::Sampler> sampler;  // last segment only
  };
  struct Session {
    uint64_t id = 0;
    std::string head_peer;  // routing id of the head that loaded it
    std::string head_key;   // its public key (empty when insecure)
    std::unique_ptr<model::Model> model;
    std::unique_ptr<exec::SegmentExecutor> executor;
    std::unique_ptr<net::Client> next;  // null at the last segment: tokens go to the head
    std::string source;  // the file its weights are mapped from
    uint64_t weight_bytes = 0;
    Clock::time_point last_active{};  // the last message for it
    uint64_t last_send_us = 0;  // how long the previous hand-off took (reported with the next step)
    wire::ActivationType send_type = wire::ACTIVATION_F32;  // of the hidden states it sends on
    std::map<uint64_t, Sequence> sequences;
    FreedSequences freed;
    std::vector<float> logits;
  };
  // A LoadSegment whose session is being built on a background thread.
  struct Loading {
    std::string peer;
    std::string peer_key;  // the loading head's key
    uint64_t request_id = 0;
    wire::LoadSegment load;
    std::string unverified_shard;  // hashed by the load; marked verified when it succeeds
    Clock::time_point started;
    std::future<Result<std::unique_ptr<Session>>> session;
  };
  // What a Reshape prepared for a session, until its SwitchSegment (worker_reshape.cc).
  struct Prepared {
    std::string head_peer;  // the head that sent the Reshape: KvReceived and errors go there
    std::string head_key;
    uint64_t request_id = 0;
    wire::Reshape reshape;
    std::string unverified_shard;
    Clock::time_point started;
    Clock::time_point last_active;  // of its head (KeepAlive), for a worker that holds no session yet
    std::future<Result<std::unique_ptr<Session>>> building;  // valid while the segment is being built
    std::unique_ptr<Session> session;  // the prepared segment; null for an empty range
    uint64_t extra_weight_bytes = 0;   // what it holds beyond what the live segment already maps
    std::map<uint64_t, text::SamplerState> samplers;  // with the head unit, by sequence
    std::map<uint64_t, std::set<int64_t>> imported;   // attention units received, by sequence
    struct Transfer {
      uint32_t units = 0;
      uint64_t bytes = 0;
    };
    std::map<std::string, Transfer> transfers;  // KvData received since each sender's last `last`
  };
  struct Pending {
    net::Incoming in;
    std::optional<uint64_t> from_next;  // the session whose downstream worker sent it
    Clock::time_point read_at;
  };

  Worker(WorkerOptions options, std::unique_ptr<net::Server> server, ShardCache cache, ModelAccess model_access);
  void read_available(std::chrono::milliseconds timeout);
  void handle(Pending& p);
  void on_hello(const net::Incoming& in);
  void on_shard_data(net::Incoming& in);
  void on_load(const net::Incoming& in);
  void on_step(net::Incoming& in, Clock::time_point read_at);
  void on_free(const net::Incoming& in);
  void on_downstream(uint64_t session, const net::Incoming& in);
  void on_profile(const net::Incoming& in);
  void on_ping(const net::Incoming& in);
  void on_end_session(const net::Incoming& in);
  void on_reshape(const net::Incoming& in);
  void on_send_kv(const net::Incoming& in);
  void on_kv_data(net::Incoming& in);
  void on_switch(const net::Incoming& in);
  void on_speed_probe(const net::Incoming& in);
  void on_keep_alive(const net::Incoming& in);
  // Frees the sessions silent for the lease (serving thread, with no message waiting to be handled).
  void free_silent_sessions();
  bool lease_expired(const Session& s, Clock::time_point now) const { return now - s.last_active >= options_.session_lease; }
  // Drops what a Reshape prepared, and the rights of its keys (a segment still being built is
  // dropped once built).
  void discard_prepared(std::map<uint64_t, Prepared>::iterator it);
  // Answers the heads of the Reshapes whose segments have been built (serving thread).
  void finish_prepares();
  // Room for `p`'s segment on top of the live sessions and the other prepared segments.
  Status check_prepared_memory(uint64_t session, Prepared& p);
  // Ok when every sequence the switch would run has the state of every stateful unit of `p`.
  Status check_switch_complete(uint64_t session, const Prepared& p) const;
  // The link to a worker that receives KV data (kept for later transfers).
  Result<net::Client*> kv_link(const std::string& endpoint, const std::string& public_key);
  // The file a LoadSegment may open, after checking every field (serving thread), and the
  // cached shard's hash when this process has not hashed that file yet (else empty).
  struct LoadFile {
    std::string path;
    std::string unverified_shard;
  };
  Result<LoadFile> check_load(const net::Incoming& in, const wire::LoadSegment& load);
  Result<LoadFile> resolve_file(const wire::LoadSegment& load);
  // Hashes an unverified shard, reads the model and builds the session (background thread:
  // touches nothing of the worker).
  static Result<std::unique_ptr<Session>> load_segment(const LoadFile& file, const wire::LoadSegment& load,
                                                       int threads, bool mmap, net::SecurityOptions next_security);
  // Installs the sessions whose loads have finished and answers their heads (serving thread).
  void finish_loads();
  Result<Session*> install_session(std::unique_ptr<Session> session, const wire::LoadSegment& load,
                                   const std::string& head_peer, const std::string& head_key);
  Status run_step(Session& s, net::Incoming& in, Clock::time_point read_at);
  // Frees a session slot and room for `bytes` more weights for session `keep` of `head`: takes
  // the head's own other sessions and silent ones (least recently active first), never the live
  // sessions of other heads; an error ("worker busy") when they are in the way.
  Status make_room(uint64_t bytes, uint64_t keep, const std::string& head);
  void drop_session(std::map<uint64_t, std::unique_ptr<Session>>::iterator it, const std::string& why);
  // Brings the ZAP allow-list in line with the roles (owners' keys stay on it).
  void sync_admitted();
  void reply_error(const std::string& peer, uint64_t request_id, uint64_t session, uint64_t sequence,
                   const std::string& message);
  void send(const std::string& peer, const wire::Envelope& e, std::vector<zmq::message_t> frames = {});

  WorkerOptions options_;
  std::unique_ptr<net::Server> server_;
  ShardCache cache_;
  ModelAccess model_access_;
  uint64_t memory_limit_ = 0;
  int threads_ = 1;
  KeyRoles roles_;
  std::set<std::string> admitted_;  // keys besides the owners' on the ZAP allow-list
  uint64_t admitted_version_ = ~uint64_t{0};
  LogLimiter error_log_{{.what = "error replies", .sources = "peers"}};  // named once the worker has a name
  LogLimiter send_log_{{.what = "failed sends", .sources = "peers"}};  // e.g. the replies to a head that died
  std::map<uint64_t, std::unique_ptr<Session>> sessions_;
  std::map<uint64_t, Loading> loading_;  // by session
  std::map<uint64_t, Prepared> prepared_;  // by session
  // Segments aborted while they were being built: dropped once built (a future cannot be
  // dropped without waiting for it), while the session may already prepare another.
  std::vector<std::future<Result<std::unique_ptr<Session>>>> abandoned_builds_;
  std::map<std::string, std::unique_ptr<net::Client>> kv_links_;  // by endpoint and key
  std::unique_ptr<ThreadPool> probe_pool_;  // made at the first SpeedProbe
  std::deque<Pending> queue_;
  std::map<std::string, std::string> profiles_;  // DeviceProfile JSON by model path and settings
};

}  // namespace ll::cluster
