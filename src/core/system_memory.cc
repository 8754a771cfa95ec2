#include "core/system_memory.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/proc_cgroup.h"
#include "core/regular_file.h"

namespace ll {
namespace {

namespace fs = std::filesystem;

// "" when the file cannot be read: the kernel files read here are absent on some systems.
std::string read_file(const fs::path& path) {
  auto text = read_regular_file(path.string());
  return text.ok() ? std::move(text).value() : std::string();
}

// A limit file holds a byte count, or "max" (v2) / a value near 2^63 (v1) for no limit.
std::optional<uint64_t> read_limit(const fs::path& path) {
  std::istringstream in(read_file(path));
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    const unsigned long long v = std::stoull(text);
    if (v >= (1ull << 62)) return std::nullopt;
    return static_cast<uint64_t>(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The smallest limit from `root/relative` up to `root` (a child cannot exceed its parent's
// limit). In a container the relative path may not exist below the mount; the walk then
// still reaches the mount itself, which is the container's own group.
std::optional<uint64_t> tightest_limit(const fs::path& root, const std::string& relative, const char* file) {
  std::optional<uint64_t> best;
  fs::path dir = (root / fs::path(relative).relative_path()).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  while (true) {
    if (auto v = read_limit(dir / file)) best = best ? std::min(*best, *v) : *v;
    if (dir == root || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return best;
}

}  // namespace

std::optional<uint64_t> parse_mem_available(const std::string& meminfo) {
  std::istringstream in(meminfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    unsigned long long kib = 0;
    if (fields >> kib) return static_cast<uint64_t>(kib) * 1024;
  }
  return std::nullopt;
}

std::optional<uint64_t> cgroup_memory_limit() {
  std::optional<uint64_t> best;
  auto take = [&](std::optional<uint64_t> v) {
    if (v) best = best ? std::min(*best, *v) : *v;
  };
  for (const CgroupMembership& g : own_cgroups()) {
    if (g.controllers.empty()) {
      const fs::path root =
          fs::exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
      take(tightest_limit(root, g.path, "memory.max"));
    } else if (std::find(g.controllers.begin(), g.controllers.end(), "memory") != g.controllers.end()) {
      take(tightest_limit("/sys/fs/cgroup/memory", g.path, "memory.limit_in_bytes"));
    }
  }
  return best;
}

uint64_t usable_memory_bytes(uint64_t cap) {
  uint64_t usable = parse_mem_available(read_file("/proc/meminfo")).value_or(UINT64_MAX);
  if (auto limit = cgroup_memory_limit()) usable = std::min(usable, *limit);
  if (cap > 0) usable = std::min(usable, cap);
  return usable == UINT64_MAX ? 0 : usable;
}

uint64_t resident_bytes() {
  std::istringstream in(read_file("/proc/self/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

}  // namespace ll
