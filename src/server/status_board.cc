#include "server/status_board.h"

namespace ll::server {
namespace {

// Weight of the newest token in a device's per-token averages: about the last 10 tokens count.
constexpr double kAverageWeight = 0.1;
// tokens_per_second is measured over this many whole seconds before the current one.
constexpr int64_t kRateSeconds = 3;
// A longer gap between tokens is a pause, not a slow token.
constexpr auto kPause = std::chrono::seconds(1);

double average(double previous, double sample, bool first) {
  return first ? sample : previous + kAverageWeight * (sample - previous);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

StatusBoard::StatusBoard(std::string model, std::string memory_note)
    : model_(std::move(model)), memory_note_(std::move(memory_note)) {
  per_second_.assign(kHistorySeconds + 1, 0);
}

int64_t StatusBoard::second_now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
}

void StatusBoard::advance(int64_t second) const {
  for (; current_second_ < second; ++current_second_) {
    per_second_.push_back(0);
    per_second_.pop_front();
  }
}

void StatusBoard::set_devices(std::vector<DeviceStatus> devices) {
  std::lock_guard lock(mutex_);
  devices_ = std::move(devices);
}

void StatusBoard::set_placement(size_t device, std::string units, int64_t unit_count, uint64_t memory_used_bytes) {
  std::lock_guard lock(mutex_);
  if (device >= devices_.size()) return;
  DeviceStatus& d = devices_[device];
  d.units = std::move(units);
  d.unit_count = unit_count;
  d.memory_used_bytes = memory_used_bytes;
}

void StatusBoard::token(const std::vector<StageSample>& stages, Clock::time_point at) {
  const int64_t second = second_now();
  std::lock_guard lock(mutex_);
  advance(second);
  per_second_.back()++;
  if (last_token_at_ && at >= *last_token_at_ && at - *last_token_at_ < kPause) {
    const double interval = std::chrono::duration<double>(at - *last_token_at_).count();
    token_interval_ = average(token_interval_, interval, token_interval_ == 0);
  }
  if (!last_token_at_ || at > *last_token_at_) last_token_at_ = at;
  for (const StageSample& s : stages) {
    if (s.device >= devices_.size()) continue;
    DeviceStatus& d = devices_[s.device];
    const bool first = d.steps == 0;
    d.compute_seconds = average(d.compute_seconds, s.compute_seconds, first);
    d.queue_seconds = average(d.queue_seconds, s.queue_seconds, first);
    d.send_seconds = average(d.send_seconds, s.send_seconds, first);
    d.steps++;
    d.compute_seconds_total += s.compute_seconds;
    d.queue_seconds_total += s.queue_seconds;
    d.send_seconds_total += s.send_seconds;
  }
}

void StatusBoard::set_parallel(size_t parallel) {
  std::lock_guard lock(mutex_);
  parallel_ = std::max<size_t>(parallel, 1);
}

void StatusBoard::sequence_started() {
  std::lock_guard lock(mutex_);
  active_++;
}

void StatusBoard::sequence_ended(uint64_t prompt_tokens, uint64_t completion_tokens) {
  std::lock_guard lock(mutex_);
  if (active_ > 0) active_--;
  prompt_tokens_ += prompt_tokens;
  completion_tokens_ += completion_tokens;
}

void StatusBoard::request_answered(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  requests_[{route, status}]++;
}

void StatusBoard::event(std::string kind, std::string text) {
  {
    std::lock_guard lock(mutex_);
    events_.push_back({next_event_id_++, unix_now(), std::move(kind), std::move(text)});
    if (events_.size() > kEventsKept) events_.pop_front();
  }
  new_event_.notify_all();
}

StatusSnapshot StatusBoard::snapshot() const {
  const int64_t second = second_now();
  std::lock_guard lock(mutex_);
  advance(second);
  StatusSnapshot s;
  s.model = model_;
  s.memory_note = memory_note_;
  s.uptime_seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  s.devices = devices_;
  // Whole seconds only: the current one is still counting.
  s.tokens_per_second_history.assign(per_second_.begin(), per_second_.end() - 1);
  const int64_t span = std::min<int64_t>(kRateSeconds, second);
  uint64_t recent = 0;
  for (int64_t i = 0; i < span; ++i) recent += s.tokens_per_second_history[kHistorySeconds - 1 - i];
  s.tokens_per_second = span > 0 ? static_cast<double>(recent) / static_cast<double>(span) : 0.0;
  s.generating_tokens_per_second = token_interval_ > 0 ? 1.0 / token_interval_ : 0.0;
  s.active_sequences = std::min<uint64_t>(active_, parallel_);
  s.queued_requests = active_ - s.active_sequences;
  s.prompt_tokens_total = prompt_tokens_;
  s.completion_tokens_total = completion_tokens_;
  for (const auto& [key, count] : requests_) s.requests.push_back({key.first, key.second, count});
  s.events.assign(events_.begin(), events_.end());
  return s;
}

std::vector<StatusEvent> StatusBoard::events_after(uint64_t after_id, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  new_event_.wait_for(lock, timeout, [&] { return closed_ || next_event_id_ - 1 > after_id; });
  std::vector<StatusEvent> out;
  for (const StatusEvent& e : events_) {
    if (e.id > after_id) out.push_back(e);
  }
  return out;
}

void StatusBoard::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  new_event_.notify_all();
}

bool StatusBoard::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

}  // namespace ll::server
