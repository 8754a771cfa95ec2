#pragma once
// The control groups a process belongs to, as /proc/PID/cgroup lists them: one line
// "hierarchy-id:controller,list:path" per hierarchy (cgroup v2 has id 0 and no controllers).
// Read by the memory probe (limits above us) and by the emulator (groups made beneath us).
#include <string>
#include <vector>

namespace ll {

struct CgroupMembership {
  std::vector<std::string> controllers;  // empty for the v2 unified hierarchy
  std::string path;                      // below the hierarchy's mount point, starts with '/'
};

// Parses a /proc/PID/cgroup text; malformed lines are skipped.
std::vector<CgroupMembership> parse_proc_cgroup(const std::string& text);
// This process's groups, from /proc/self/cgroup (empty when it cannot be read).
std::vector<CgroupMembership> own_cgroups();
// The path of this process's group in the v1 hierarchy that has `controller`, "/" if none.
std::string own_cgroup_path(const std::string& controller);

}  // namespace ll
