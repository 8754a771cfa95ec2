#include "emulate/process_census.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace ll::emulate {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> directory_entries(const char* path) {
  std::vector<std::string> out;
  DIR* dir = opendir(path);
  if (!dir) return out;
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  closedir(dir);
  return out;
}

}  // namespace

std::optional<uint64_t> parse_resident_bytes(const std::string& status) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    uint64_t kib = 0;
    if (fields >> kib) return kib * 1024;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<pid_t> parse_parent_pid(const std::string& stat) {
  // "pid (comm) state ppid ...": the command ends at the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string state;
  pid_t ppid = 0;
  if (fields >> state >> ppid) return ppid;
  return std::nullopt;
}

std::vector<std::string> parse_netns_list(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    if (fields >> name) out.push_back(name);
  }
  return out;
}

std::optional<uint64_t> resident_bytes_of(pid_t pid) {
  return parse_resident_bytes(read_text("/proc/" + std::to_string(pid) + "/status"));
}

size_t open_descriptors() {
  // The listing's own descriptor is among them.
  const size_t n = directory_entries("/proc/self/fd").size();
  return n > 0 ? n - 1 : 0;
}

std::vector<pid_t> child_processes() {
  std::vector<pid_t> out;
  const pid_t self = getpid();
  for (const std::string& name : directory_entries("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto ppid = parse_parent_pid(read_text("/proc/" + name + "/stat"));
    if (ppid && *ppid == self) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> network_namespaces() {
  std::FILE* pipe = popen("ip netns list 2>/dev/null", "r");
  if (!pipe) return Status::Error("cannot run `ip netns list`: install iproute2 to count network namespaces");
  std::string text;
  char buf[512];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  if (pclose(pipe) != 0) {
    return Status::Error("`ip netns list` failed: install iproute2 to count network namespaces");
  }
  auto names = parse_netns_list(text);
  std::sort(names.begin(), names.end());
  return names;
}

uint64_t ResidentSeries::max() const {
  return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end());
}

bool ResidentSeries::flat(uint64_t slack_bytes, double slack_fraction) const {
  if (samples.empty()) return true;
  return static_cast<double>(last()) <= static_cast<double>(first()) * (1 + slack_fraction) +
                                            static_cast<double>(slack_bytes);
}

}  // namespace ll::emulate
