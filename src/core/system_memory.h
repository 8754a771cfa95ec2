#pragma once
// How much memory this process may use: the free memory of the machine and the memory
// limit of its control group (a worker may run under its own cap).
#include <cstdint>
#include <optional>
#include <string>

namespace ll {

// MemAvailable of a /proc/meminfo text, in bytes.
std::optional<uint64_t> parse_mem_available(const std::string& meminfo);
// The tightest memory limit of this process's cgroup and its ancestors (v2 memory.max,
// v1 memory.limit_in_bytes); nullopt when unlimited or unknown.
std::optional<uint64_t> cgroup_memory_limit();
// min(MemAvailable, the cgroup limit, `cap` if non-zero).
uint64_t usable_memory_bytes(uint64_t cap = 0);
// Resident set size of this process (VmRSS), 0 when unknown.
uint64_t resident_bytes();

}  // namespace ll
