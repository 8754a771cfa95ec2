#pragma once
// Shows the library's progress reports (core/progress.h) on stderr: on a terminal one bar per
// piece of work, redrawn in place at most ten times a second; otherwise (a pipe, a file, or
// --log-format json) a log line every few seconds while it lasts and one when work that took a second or more ends.
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "core/progress.h"

namespace ll::cli {

class ProgressDisplay {
 public:
  ProgressDisplay();
  // A sink that reports to this display; the display must outlive it.
  ProgressSink sink();
  void show(const Progress& p);

 private:
  using Clock = std::chrono::steady_clock;
  struct Shown {
    Clock::time_point started;
    Clock::time_point last_drawn;
    bool drawn;
  };
  const bool terminal_;
  std::mutex mutex_;
  std::map<std::string, Shown> shown_;  // by Progress::what, until it finishes
};

// A sink to the one display of this process.
ProgressSink progress_bars();

}  // namespace ll::cli
