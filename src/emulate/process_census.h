#pragma once
// What a long run of an emulated cluster checks does not grow or leak, read from /proc and from
// `ip netns list`: a process's resident memory, this process's open file descriptors, its child
// processes and the machine's network namespaces.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace ll::emulate {

// VmRSS of a /proc/PID/status text, in bytes.
std::optional<uint64_t> parse_resident_bytes(const std::string& status);
// The parent pid of a /proc/PID/stat text (its command may hold spaces and parentheses).
std::optional<pid_t> parse_parent_pid(const std::string& stat);
// The names of an `ip netns list` output ("name (id: 3)" lines).
std::vector<std::string> parse_netns_list(const std::string& text);

std::optional<uint64_t> resident_bytes_of(pid_t pid);  // nullopt: gone
size_t open_descriptors();                             // of this process
std::vector<pid_t> child_processes();                  // of this process, alive or not yet reaped
// The network namespaces `ip netns` knows; an error when `ip` cannot run.
Result<std::vector<std::string>> network_namespaces();

// Samples of one process's resident memory over a run.
struct ResidentSeries {
  std::string name;
  std::vector<uint64_t> samples;
  uint64_t first() const { return samples.empty() ? 0 : samples.front(); }
  uint64_t last() const { return samples.empty() ? 0 : samples.back(); }
  uint64_t max() const;
  // Flat: the last sample exceeds the first by no more than `slack_bytes` plus `slack_fraction`
  // of the first (allocators keep some memory; a leak grows without bound).
  bool flat(uint64_t slack_bytes, double slack_fraction) const;
};

}  // namespace ll::emulate
