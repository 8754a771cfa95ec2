#include "core/log_limiter.h"

#include <fmt/format.h>

#include "core/log.h"

namespace ll {

LogLimiter::LogLimiter(Options options, Sink sink, Now now)
    : options_(std::move(options)), sink_(std::move(sink)), now_(std::move(now)) {
  if (!sink_) sink_ = [](const std::string& line) { log::warn("log", "{}", line); };
  if (!now_) now_ = [] { return Clock::now(); };
}

void LogLimiter::log(const std::string& source, const std::string& line) {
  start_interval_if_due(now_());
  if (printed_ < options_.burst) {
    ++printed_;
    sink_(line);
    return;
  }
  ++held_back_;
  if (sources_.size() < options_.max_tracked_sources) {
    sources_.insert(source);
  } else if (sources_.count(source) == 0) {
    sources_overflowed_ = true;
  }
}

void LogLimiter::flush() { start_interval_if_due(now_()); }

void LogLimiter::start_interval_if_due(Clock::time_point now) {
  if (started_ && now - interval_start_ < options_.interval) return;
  if (held_back_ > 0) {
    sink_(fmt::format("{} more {} from {}{} {} in the last {} s", held_back_, options_.what,
                      sources_overflowed_ ? "at least " : "", sources_.size(), options_.sources,
                      options_.interval.count()));
  }
  started_ = true;
  interval_start_ = now;
  printed_ = 0;
  held_back_ = 0;
  sources_.clear();
  sources_overflowed_ = false;
}

}  // namespace ll
