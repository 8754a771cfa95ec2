#pragma once
// A cgroup v1 pair (cpu + memory) that caps one emulated device: CPU time as a share of one
// core (CFS quota over a short period, so a capped worker is slower at every step, not just on
// average) and memory. Created beneath this process's own cgroups, so limits set from outside
// still apply, and removed again on destruction. Needs root.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"

namespace ll::emulate {

class Cgroup {
 public:
  // cpu: cores (0: no quota yet; nullopt: not under the cpu controller, so set_cpu cannot be
  // used); memory: bytes (0: no limit).
  static Result<std::unique_ptr<Cgroup>> create(const std::string& name, std::optional<double> cpu,
                                                uint64_t memory);
  ~Cgroup();
  Status add(pid_t pid);
  // A new share for the processes in it, at once (cores; 0: no quota).
  Status set_cpu(double cpu);
  const std::string& description() const { return description_; }

 private:
  Cgroup() = default;
  std::string cpu_dir_, memory_dir_;
  std::string description_;
};

}  // namespace ll::emulate
