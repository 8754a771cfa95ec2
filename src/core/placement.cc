#include "core/placement.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace ll {
namespace {

// "hostname|machine-id" (either part may be empty when unknown). Processes in different UTS
// namespaces with different host names count as different machines, as emulated hosts are.
std::string host_identity() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) name[0] = '\0';
  std::string machine_id;
  std::ifstream("/etc/machine-id") >> machine_id;
  return std::string(name) + "|" + machine_id;
}

}  // namespace

Placement believed(Placement said) {
  if (said.cpus.size() > kMaxPlacementCpus || !std::is_sorted(said.cpus.begin(), said.cpus.end())) said.cpus.clear();
  return said;
}

Placement this_placement() {
  Placement p;
  p.host = host_identity();
  std::ifstream("/proc/sys/kernel/random/boot_id") >> p.kernel;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (uint32_t c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) p.cpus.push_back(c);
    }
  }
  return p;
}

bool compete(const Placement& a, const Placement& b) {
  if (a.host == b.host) return true;  // one machine, or neither said which
  if (a.kernel.empty() || a.kernel != b.kernel) return false;
  if (a.cpus.empty() || b.cpus.empty()) return true;
  std::vector<uint32_t> common;
  std::set_intersection(a.cpus.begin(), a.cpus.end(), b.cpus.begin(), b.cpus.end(), std::back_inserter(common));
  return !common.empty();
}

std::vector<std::vector<size_t>> rounds_apart(const std::vector<Placement>& placements) {
  std::vector<std::vector<size_t>> rounds;
  for (size_t i = 0; i < placements.size(); ++i) {
    auto fits = [&](const std::vector<size_t>& round) {
      return std::none_of(round.begin(), round.end(), [&](size_t j) { return compete(placements[i], placements[j]); });
    };
    auto round = std::find_if(rounds.begin(), rounds.end(), fits);
    if (round == rounds.end()) {
      rounds.emplace_back();
      round = rounds.end() - 1;
    }
    round->push_back(i);
  }
  return rounds;
}

}  // namespace ll
