#include "core/placement.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ll {
namespace {

using Rounds = std::vector<std::vector<size_t>>;

// The cold-start setup: three emulated hosts on one machine of two cores, a on core 0 and b
// and c sharing core 1. a and b are timed at once; c, which shares b's core, after them.
TEST(Placement, EmulatedHostsSharingACoreAreTimedOneAfterAnother) {
  const std::vector<Placement> p = {{"ha|m", "boot", {0}}, {"hb|m", "boot", {1}}, {"hc|m", "boot", {1}}};
  EXPECT_FALSE(compete(p[0], p[1]));
  EXPECT_TRUE(compete(p[1], p[2]));
  EXPECT_EQ(rounds_apart(p), (Rounds{{0, 1}, {2}}));
}

TEST(Placement, SeparateMachinesAreTimedAtOnce) {
  const std::vector<Placement> p = {{"a|1", "k1", {0, 1}}, {"b|2", "k2", {0, 1}}, {"c|3", "k3", {0}}};
  EXPECT_EQ(rounds_apart(p), (Rounds{{0, 1, 2}}));
}

TEST(Placement, OneHostIsTimedOneAtATimeWhateverItsCores) {
  const std::vector<Placement> p = {{"h|m", "boot", {0}}, {"h|m", "boot", {1}}, {"g|n", "other", {0}}};
  EXPECT_EQ(rounds_apart(p), (Rounds{{0, 2}, {1}}));
}

// A worker that says nothing of its placement competes with every other that says nothing, and
// one that names no CPUs with every process on its kernel.
TEST(Placement, WhatIsNotSaidCompetes) {
  EXPECT_TRUE(compete({}, {}));
  EXPECT_TRUE(compete({"a|m", "boot", {}}, {"b|m", "boot", {3}}));
  // Hosts of different names on kernels not said are apart.
  EXPECT_FALSE(compete({"a|m", "", {0}}, {"b|m", "", {0}}));
}

// A peer's list of CPUs out of order or longer than any kernel's is not believed: the worker
// then competes with every other on its kernel instead of claiming cores of its own.
TEST(Placement, AnUnbelievableListOfCpusNamesNone) {
  EXPECT_EQ(believed({"a|m", "boot", {1, 0}}).cpus, std::vector<uint32_t>{});
  std::vector<uint32_t> many(kMaxPlacementCpus + 1);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<uint32_t>(i);
  EXPECT_EQ(believed({"a|m", "boot", many}).cpus, std::vector<uint32_t>{});
  EXPECT_TRUE(compete(believed({"a|m", "boot", {3, 2}}), {"b|m", "boot", {0}}));
  many.pop_back();
  EXPECT_EQ(believed({"a|m", "boot", many}).cpus.size(), kMaxPlacementCpus);
  EXPECT_EQ(believed({"a|m", "boot", {0, 2}}).cpus, (std::vector<uint32_t>{0, 2}));
}

TEST(Placement, ThisProcessNamesItsKernelAndCpus) {
  const Placement p = this_placement();
  EXPECT_FALSE(p.kernel.empty());
  ASSERT_FALSE(p.cpus.empty());
  EXPECT_TRUE(std::is_sorted(p.cpus.begin(), p.cpus.end()));
  EXPECT_TRUE(compete(p, p));
}

}  // namespace
}  // namespace ll
