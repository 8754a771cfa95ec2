#pragma once
// Where a process computes: its machine, the kernel it runs on and the CPUs it may use. Two
// processes whose timings would disturb each other's are told apart from those that would not,
// so that workers are profiled at the same time only where they do not compete.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ll {

struct Placement {
  std::string host;             // "hostname|machine-id"; "" when not said
  std::string kernel;           // the kernel's boot id, shared by every namespace on it; "" when not said
  std::vector<uint32_t> cpus;   // the CPUs it may run on, ascending; empty when not said
};

// The most CPUs a placement names (the kernel's own limit on x86-64): a longer list is not believed.
inline constexpr size_t kMaxPlacementCpus = 8192;

// A placement as a peer said it, with its CPUs dropped when they are more than
// kMaxPlacementCpus or out of order: it then competes with every process on its kernel.
Placement believed(Placement said);

// This process's placement.
Placement this_placement();

// Whether timings taken in both at once would disturb each other: one host (or neither said),
// or one kernel with CPUs in common (or not said). Emulated hosts on one machine, each on cores
// of its own, do not compete for a core; those that share a core do.
bool compete(const Placement& a, const Placement& b);

// The indices of `placements` in rounds, in order, with no two competing ones in a round: each
// goes into the first round that holds none it competes with.
std::vector<std::vector<size_t>> rounds_apart(const std::vector<Placement>& placements);

}  // namespace ll
