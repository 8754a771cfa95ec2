#pragma once
// Progress of long work (a shard crossing the network, workers being profiled or loading their
// segments), reported by the library as values; the command decides how to show them
// (cli/progress_display.h: a bar on a terminal, plain lines otherwise).
#include <cstdint>
#include <functional>
#include <string>

namespace ll {

enum class ProgressUnit { bytes, items };

struct Progress {
  std::string what;  // "sending units 0..3 to worker 1 'a'"
  uint64_t done = 0;
  uint64_t total = 0;  // done == total: finished
  ProgressUnit unit = ProgressUnit::items;
};

using ProgressSink = std::function<void(const Progress&)>;

// One line: "what  12.0/48.0 MiB [=====>      ]  25%  30.1 MiB/s  1 s left" (rate and time left
// once some time has passed; bar_width 0: no bar).
std::string render_progress(const Progress& p, double elapsed_seconds, size_t bar_width);

}  // namespace ll
