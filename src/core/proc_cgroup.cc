#include "core/proc_cgroup.h"

#include <algorithm>
#include <sstream>

#include "core/regular_file.h"

namespace ll {

std::vector<CgroupMembership> parse_proc_cgroup(const std::string& text) {
  std::vector<CgroupMembership> groups;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    CgroupMembership g;
    std::istringstream names(line.substr(a + 1, b - a - 1));
    std::string name;
    while (std::getline(names, name, ',')) {
      if (!name.empty()) g.controllers.push_back(name);
    }
    g.path = line.substr(b + 1);
    groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<CgroupMembership> own_cgroups() {
  auto text = read_regular_file("/proc/self/cgroup");
  return text.ok() ? parse_proc_cgroup(text.value()) : std::vector<CgroupMembership>{};
}

std::string own_cgroup_path(const std::string& controller) {
  for (const CgroupMembership& g : own_cgroups()) {
    if (std::find(g.controllers.begin(), g.controllers.end(), controller) != g.controllers.end()) return g.path;
  }
  return "/";
}

}  // namespace ll
