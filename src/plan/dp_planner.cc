// Exact dynamic programming for a fixed device order. A state (d, i) means "device d's
// segment starts at unit i, and units [0, i) sit on earlier devices". Leaving a state picks
// the segment's end k and the next device; that fixes the stage's outgoing transfer, so the
// stage's time is known on the edge: the value of a path is the sum (latency) or the maximum
// (throughput) of its stage times. The first device matters for the token's return, so each
// possible first device is solved in turn. O(D^3 N^2) for D devices and N units.
#include <algorithm>
#include <limits>
#include <vector>

#include "plan/planners.h"

namespace ll::plan {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Solution {
  double value = kInf;
  std::vector<model::UnitRange> ranges;
};

// The best assignment whose stages all take at most `stage_limit`; value = sum or max of stages.
Solution solve(const CostModel& c, bool bottleneck, double stage_limit, bool pin_first) {
  const int D = c.n_devices();
  const int64_t N = c.n_units();
  auto combine = [&](double path, double stage) { return bottleneck ? std::max(path, stage) : path + stage; };
  struct Parent {
    int device = -1;
    int64_t begin = -1;
  };
  Solution best;
  for (int f = 0; f < (pin_first ? 1 : D); ++f) {
    std::vector<std::vector<double>> value(D, std::vector<double>(N, kInf));
    std::vector<std::vector<Parent>> parent(D, std::vector<Parent>(N));
    value[f][0] = 0;
    double end_value = kInf;
    Parent end;  // the state whose segment reaches the last unit
    for (int d = f; d < D; ++d) {
      for (int64_t i = 0; i < N; ++i) {
        if (value[d][i] == kInf) continue;
        for (int64_t k = i + 1; k <= N; ++k) {
          const model::UnitRange seg{i, k};
          if (!c.allows(seg, d)) break;  // memory and units only grow with k
          const double compute = c.compute_seconds(seg, d);
          if (k == N) {
            const double stage = compute + c.return_seconds(d, f);
            const double v = combine(value[d][i], stage);
            if (stage <= stage_limit && v < end_value) {
              end_value = v;
              end = {d, i};
            }
            continue;
          }
          for (int next = d + 1; next < D; ++next) {
            const double stage = compute + c.cut_seconds(k - 1, d, next);
            const double v = combine(value[d][i], stage);
            if (stage <= stage_limit && v < value[next][k]) {
              value[next][k] = v;
              parent[next][k] = {d, i};
            }
          }
        }
      }
    }
    if (end_value >= best.value) continue;
    best.value = end_value;
    best.ranges.assign(D, model::UnitRange{});
    int64_t stop = N;
    for (Parent p = end; p.device >= 0; p = parent[p.device][p.begin]) {
      best.ranges[p.device] = {p.begin, stop};
      stop = p.begin;
      if (p.begin == 0) break;
    }
  }
  return best;
}

}  // namespace

Result<Assignment> plan_dp(const CostModel& cost, const PlanOptions& options) {
  const bool throughput = options.objective == Objective::Throughput;
  Solution s = solve(cost, throughput, kInf, options.pin_first);
  if (s.value == kInf) return infeasible_error(cost, options);
  // Among the plans with the smallest slowest stage, the one with the lowest latency.
  if (throughput) s = solve(cost, false, s.value, options.pin_first);
  return Assignment{s.ranges, true};
}

}  // namespace ll::plan
