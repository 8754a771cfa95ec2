#pragma once
// What the server shows of itself (the web page's cluster view, /metrics, /v1/status): the
// devices the model runs on, their time per token, tokens/s over time, requests and tokens
// served, and the rebalances and recoveries as they happen. The engines and the HTTP layer
// report to it; readers take snapshots. Thread-safe: every method may be called from any thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ll::server {

struct DeviceStatus {
  std::string name;
  std::string address;  // "tcp://host:port", or "this process"
  std::string units;    // what it holds: "units 0..5 (embed to ffn[1]) of 12", or "nothing"
  int64_t unit_count = 0;
  uint32_t threads = 0;
  uint64_t memory_limit_bytes = 0;  // 0: not known
  uint64_t memory_used_bytes = 0;   // what its units need: weights and a full KV cache
  // Per token, averaged over the recent ones (an exponential moving average).
  double compute_seconds = 0, queue_seconds = 0, send_seconds = 0;
  // Over the server's life, for /metrics.
  uint64_t steps = 0;
  double compute_seconds_total = 0, queue_seconds_total = 0, send_seconds_total = 0;
};

// One device's share of one generated token.
struct StageSample {
  size_t device = 0;
  double compute_seconds = 0, queue_seconds = 0, send_seconds = 0;
};

struct StatusEvent {
  uint64_t id = 0;       // increasing from 1
  double unix_seconds = 0;
  std::string kind;      // "rebalance", "recovery", "rejoin"
  std::string text;
};

struct RequestCount {
  std::string route;
  int status = 0;
  uint64_t count = 0;
};

struct StatusSnapshot {
  std::string model;
  std::string memory_note;  // where memory_used_bytes comes from
  double uptime_seconds = 0;
  std::vector<DeviceStatus> devices;
  // Tokens generated in each of the last kHistorySeconds whole seconds, oldest first.
  std::vector<uint32_t> tokens_per_second_history;
  double tokens_per_second = 0;  // over the last few seconds
  // While tokens come (pauses of a second or more left out), over about the last few dozen.
  double generating_tokens_per_second = 0;
  uint64_t active_sequences = 0;
  uint64_t queued_requests = 0;  // waiting for one of the engine's parallel places
  uint64_t prompt_tokens_total = 0, completion_tokens_total = 0;
  std::vector<RequestCount> requests;
  std::vector<StatusEvent> events;  // the latest kEventsKept
};

class StatusBoard {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kHistorySeconds = 60;
  static constexpr size_t kEventsKept = 50;

  StatusBoard(std::string model, std::string memory_note);

  // The devices in pipeline order (their running totals start at zero).
  void set_devices(std::vector<DeviceStatus> devices);
  // A new placement (a rebalance, a recovery): what device i holds and needs now.
  void set_placement(size_t device, std::string units, int64_t unit_count, uint64_t memory_used_bytes);
  // One token generated, arrived `at`; `stages`: each device's time for it (empty: not measured
  // per device).
  void token(const std::vector<StageSample>& stages, Clock::time_point at = Clock::now());
  // Requests the engine holds beyond its `parallel` generating ones wait in its queue.
  void set_parallel(size_t parallel);
  // A request given to the engine (generating, or queued while `parallel` others generate).
  void sequence_started();
  void sequence_ended(uint64_t prompt_tokens, uint64_t completion_tokens);
  void request_answered(const std::string& route, int status);
  void event(std::string kind, std::string text);

  StatusSnapshot snapshot() const;
  // Events after `after_id`, waiting up to `timeout` for one when there is none yet (and the
  // board is open).
  std::vector<StatusEvent> events_after(uint64_t after_id, std::chrono::milliseconds timeout) const;
  // Ends the waits of events_after() for good: the server is stopping, its streams end.
  void close();
  bool closed() const;

 private:
  // Moves the per-second window up to `now`.
  void advance(int64_t second) const;
  int64_t second_now() const;

  const std::string model_;
  const std::string memory_note_;
  const Clock::time_point started_ = Clock::now();
  mutable std::mutex mutex_;
  mutable std::condition_variable new_event_;
  std::vector<DeviceStatus> devices_;
  mutable std::deque<uint32_t> per_second_;  // back: the current (partial) second
  mutable int64_t current_second_ = 0;
  std::optional<Clock::time_point> last_token_at_;
  double token_interval_ = 0;  // seconds, averaged
  size_t parallel_ = 1;
  uint64_t active_ = 0, prompt_tokens_ = 0, completion_tokens_ = 0;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::deque<StatusEvent> events_;
  uint64_t next_event_id_ = 1;
  bool closed_ = false;
};

}  // namespace ll::server
