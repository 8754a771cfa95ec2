#pragma once
// Runs a test's kernels on one Highway target, for the tests that walk every compiled target.
#include <cstdint>

#include "hwy/targets.h"

namespace ll::test {

// Restores dynamic dispatch to the best target when the scope ends, even on failure.
struct TargetScope {
  explicit TargetScope(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~TargetScope() { hwy::SetSupportedTargetsForTest(0); }
  TargetScope(const TargetScope&) = delete;
  TargetScope& operator=(const TargetScope&) = delete;
};

}  // namespace ll::test
