#pragma once
// Rate-limited log lines for events a stranger can cause at will (refused handshakes, malformed
// or refused messages): the first `burst` lines of each interval are printed in full, the rest
// are counted, and one summary line per interval says how many were held back and from how many
// sources ("37 more refused handshakes from 12 keys in the last 10 s"). Memory stays bounded:
// at most `max_tracked_sources` sources are remembered per interval.
// Threading: not thread-safe; its owner serializes calls.
#include <chrono>
#include <cstddef>
#include <functional>
#include <set>
#include <string>

namespace ll {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Sink = std::function<void(const std::string&)>;
  struct Options {
    std::string what;                // plural, for summaries: "refused handshakes"
    std::string sources = "sources";  // plural, for summaries: "keys"
    size_t burst = 5;
    std::chrono::seconds interval{10};
    size_t max_tracked_sources = 1024;
  };

  // Default sink: a line on stderr; default clock: the steady clock.
  explicit LogLimiter(Options options, Sink sink = {}, Now now = {});

  // One event from `source`: prints a due summary first, then `line` unless the burst is spent.
  void log(const std::string& source, const std::string& line);
  // Prints the summary of an interval that has ended, if any events were held back; call it
  // from time to time so a summary appears even when the events stop.
  void flush();
  size_t tracked_sources() const { return sources_.size(); }

 private:
  void start_interval_if_due(Clock::time_point now);

  Options options_;
  Sink sink_;
  Now now_;
  Clock::time_point interval_start_{};
  bool started_ = false;
  size_t printed_ = 0;
  size_t held_back_ = 0;
  std::set<std::string> sources_;  // of the held-back events
  bool sources_overflowed_ = false;
};

}  // namespace ll
