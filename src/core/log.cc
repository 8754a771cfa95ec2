#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace ll::log {
namespace {

std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};
std::mutex g_write;

// UTC, milliseconds: lines from several machines sort together.
std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) {
  for (Level l : {Level::error, Level::warn, Level::info, Level::debug}) {
    if (name == level_name(l)) return l;
  }
  return std::nullopt;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::error:
      return "error";
    case Level::warn:
      return "warn";
    case Level::info:
      return "info";
    case Level::debug:
      return "debug";
  }
  return "info";
}

void set_level(Level level) { g_level.store(level); }
void set_format(Format format) { g_format.store(format); }
Format format() { return g_format.load(); }
bool enabled(Level level) { return level <= g_level.load(); }

void write(Level level, std::string_view source, std::string_view message) {
  std::string line;
  if (g_format.load() == Format::json) {
    const nlohmann::json j = {
        {"time", timestamp()}, {"level", level_name(level)}, {"source", source}, {"message", message}};
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = fmt::format("{} {:<5} {}: {}", timestamp(), level_name(level), source, message);
  }
  std::lock_guard lock(g_write);
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace ll::log
