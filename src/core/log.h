#pragma once
// Log lines of long-running processes (workers, the server, the network layer): one line each,
// with a timestamp, a level and the component it comes from, as text for people or as JSON
// objects for machines (--log-format json). Lines below the configured level (--log-level, -v)
// are dropped. What a command prints as its result or report is not a log line.
// Threading: every function may be called from any thread; lines never interleave.
#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

namespace ll::log {

enum class Level { error, warn, info, debug };
enum class Format { text, json };

// "error", "warn", "info", "debug"; nullopt for anything else.
std::optional<Level> parse_level(std::string_view name);
std::string_view level_name(Level level);

void set_level(Level level);
void set_format(Format format);
Format format();
bool enabled(Level level);

// text: "2026-12-02T14:20:01.123Z info  worker-1: session 3 loaded"
// json: {"time":"2026-12-02T14:20:01.123Z","level":"info","source":"worker-1","message":"session 3 loaded"}
void write(Level level, std::string_view source, std::string_view message);

template <typename... Args>
void error(std::string_view source, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, source, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view source, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, source, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(std::string_view source, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, source, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(std::string_view source, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, source, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ll::log
