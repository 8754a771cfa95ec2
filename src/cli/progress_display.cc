#include "cli/progress_display.h"

#include <unistd.h>

#include <cstdio>

#include "core/log.h"

namespace ll::cli {
namespace {

constexpr auto kTerminalEvery = std::chrono::milliseconds(100);
constexpr auto kLineEvery = std::chrono::seconds(5);
constexpr size_t kBarWidth = 24;

}  // namespace

ProgressDisplay::ProgressDisplay() : terminal_(isatty(STDERR_FILENO) == 1 && log::format() == log::Format::text) {}

ProgressSink ProgressDisplay::sink() {
  return [this](const Progress& p) { show(p); };
}

void ProgressDisplay::show(const Progress& p) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  auto [it, first] = shown_.try_emplace(p.what, Shown{now, now, false});
  const bool finished = p.done >= p.total;
  const double elapsed = std::chrono::duration<double>(now - it->second.started).count();
  // Off a terminal a line every few seconds, and at the end only for work that took a while.
  const bool due = terminal_ ? first || finished || now - it->second.last_drawn >= kTerminalEvery
                             : finished ? it->second.drawn || elapsed >= 1.0 : now - it->second.last_drawn >= kLineEvery;
  if (!due) {
    if (finished) shown_.erase(it);
    return;
  }
  it->second.last_drawn = now;
  it->second.drawn = true;
  if (terminal_) {
    // \r and clear-to-end: the bar is redrawn on its own line.
    std::fprintf(stderr, "\r%s\033[K%s", render_progress(p, elapsed, kBarWidth).c_str(), finished ? "\n" : "");
    std::fflush(stderr);
  } else {
    log::info("progress", "{}", render_progress(p, elapsed, 0));
  }
  if (finished) shown_.erase(it);
}

ProgressSink progress_bars() {
  static ProgressDisplay display;
  return display.sink();
}

}  // namespace ll::cli
