#include "cluster/speed_monitor.h"

#include <algorithm>
#include <cmath>

namespace ll::cluster {

std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + mid);
  return (lower + upper) / 2;
}

std::vector<double> expected_compute_seconds(const std::vector<profile::DeviceProfile>& profiles,
                                             const std::vector<model::UnitRange>& ranges) {
  std::vector<double> expected(ranges.size(), 0.0);
  for (size_t w = 0; w < ranges.size() && w < profiles.size(); ++w) {
    const auto& seconds = profiles[w].decode_seconds;
    for (int64_t u = std::max<int64_t>(ranges[w].begin, 0); u < ranges[w].end && u < std::ssize(seconds); ++u) {
      expected[w] += seconds[u];
    }
  }
  return expected;
}

SpeedMonitor::SpeedMonitor(size_t n_workers, SpeedMonitorOptions options)
    : options_(options), workers_(n_workers) {}

size_t SpeedMonitor::window_begin(const std::vector<Sample>& samples, double now) const {
  size_t begin = samples.size() > options_.window_tokens ? samples.size() - options_.window_tokens : 0;
  while (begin > 0 && samples[begin - 1].time >= now - options_.window_seconds) --begin;
  return begin;
}

std::vector<double> SpeedMonitor::window_values(const std::vector<Sample>& samples, double now) const {
  std::vector<double> values;
  for (size_t i = window_begin(samples, now); i < samples.size(); ++i) values.push_back(samples[i].value);
  return values;
}


void SpeedMonitor::add_compute(size_t w, double now, double observed_seconds, double expected_seconds) {
  if (w >= workers_.size() || !(expected_seconds > 0) || !(observed_seconds >= 0) || !std::isfinite(observed_seconds)) {
    return;
  }
  Worker& worker = workers_[w];
  if (worker.count == 0) worker.first_time = now;
  ++worker.count;
  worker.ratios.push_back({now, observed_seconds / expected_seconds});
  // A window ending later never starts earlier: what is before this one's start is done with.
  worker.ratios.erase(worker.ratios.begin(), worker.ratios.begin() + window_begin(worker.ratios, now));
}

void SpeedMonitor::add_send(size_t from, size_t to, double now, double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return;
  auto& samples = sends_[{from, to}];
  samples.push_back({now, seconds});
  samples.erase(samples.begin(), samples.begin() + window_begin(samples, now));
}

void SpeedMonitor::add_token(const TokenTrace& token, const std::vector<double>& expected_seconds) {
  for (size_t i = 0; i < token.stages.size(); ++i) {
    const StageTime& s = token.stages[i];
    if (s.worker < expected_seconds.size()) {
      add_compute(s.worker, token.seconds, s.compute_seconds, expected_seconds[s.worker]);
    }
    if (i + 1 < token.stages.size()) add_send(s.worker, token.stages[i + 1].worker, token.seconds, s.send_seconds);
  }
}

void SpeedMonitor::set_idle_probe(size_t w, double factor) {
  if (w >= workers_.size() || !(factor > 0) || !std::isfinite(factor)) return;
  workers_[w].probe = factor;
}

std::optional<double> SpeedMonitor::slowdown(size_t w, double now) const {
  if (w >= workers_.size()) return std::nullopt;
  const Worker& worker = workers_[w];
  const bool full = worker.count >= options_.window_tokens && now - worker.first_time >= options_.window_seconds;
  if (full) {
    std::vector<double> values = window_values(worker.ratios, now);
    if (values.size() >= options_.min_samples) return median(std::move(values));
  }
  return worker.probe;
}

std::optional<std::vector<double>> SpeedMonitor::slowdowns(double now) const {
  std::vector<double> factors;
  for (size_t w = 0; w < workers_.size(); ++w) {
    const std::optional<double> f = slowdown(w, now);
    if (!f) return std::nullopt;
    factors.push_back(*f);
  }
  return factors;
}

std::optional<double> SpeedMonitor::send_seconds(size_t from, size_t to, double now) const {
  const auto it = sends_.find({from, to});
  if (it == sends_.end()) return std::nullopt;
  std::vector<double> values = window_values(it->second, now);
  if (values.size() < options_.min_samples) return std::nullopt;
  return median(std::move(values));
}

void SpeedMonitor::reset(size_t w) {
  if (w < workers_.size()) workers_[w] = Worker{};
}

void SpeedMonitor::reset_all() {
  for (auto& w : workers_) w = Worker{};
}

}  // namespace ll::cluster
