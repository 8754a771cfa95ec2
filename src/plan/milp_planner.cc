// The assignment as a mixed-integer linear program, solved with COIN-OR (Clp for the linear
// relaxation, CBC for branch and bound).
//
// Devices keep the ring order they are given (d = 0..D-1); each holds one contiguous range of
// units or nothing. The program is one token's trip around the ring as a circulation:
//   Nodes  S(d, i)          device d's segment starts at unit i (0 <= i < N).
//   Arcs   y[d][i][j][b]    in {0,1}: d holds units [i, j) and sends on to device b:
//                           j < N: S(d,i) -> S(b,j) for b > d (devices between hold nothing);
//                           j = N: S(d,i) -> S(b,0) for b <= d, the sampled token's return
//                           to the first device b (free when b = d).
//                           Only segments that fit in d's memory (with its working buffers)
//                           have arcs, so memory needs no rows.
//   Rows   flow conservation at every node; the return arcs sum to 1 (one trip).
// Each arc is the product "d holds [i, j)" x "b comes next", so communication is linear:
// the arc's cost, its stage time, is d's compute for [i, j) plus the transfer to b.
// Every arc but a return moves forward in units and devices, so a cycle holds exactly one
// return and visits devices in increasing order: one contiguous range per device, in ring
// order, devices that would slow things down skipped. Pinning the head: returns go to the
// first device only.
//
// latency: minimise the sum of the cycle's arc costs. This relaxation is a shortest-cycle
// problem whose optimum is almost always integral; when it is not, CBC branches.
// throughput: minimise T with stage(arc) <= T for every arc in use. Written with T as a
// variable (T >= sum of a device's arc costs) the relaxation averages plans and leaves a
// gap that takes CBC seconds to close at 8 devices x 130 units. Instead T is a parameter:
// arcs with stage > T are fixed at 0, and the least T (a stage value) with a feasible
// program is found by bisection, each step one warm-started solve of the latency program.
// The solve at the optimal T also gives the plan with the lowest latency among those
// with the smallest slowest stage.
#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "plan/planners.h"

namespace ll::plan {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class Milp {
 public:
  enum class Outcome { Solved, Infeasible, NoSolution };

  Milp(const CostModel& c, const PlanOptions& o) : c_(c), o_(o), D_(c.n_devices()), N_(c.n_units()) { auto t0 = std::chrono::steady_clock::now(); build(); fprintf(stderr, "build %.3f s, %zu arcs\n", std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count(), arcs_.size()); }

  // The stage times of all arcs, ascending and distinct: the candidates for the optimal T.
  std::vector<double> stage_values() const {
    std::vector<double> v = cost_;
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }

  // A lower bound on T: every unit is covered by one arc, at least the cheapest covering it.
  double stage_lower_bound() const { return lower_bound_; }

  // Minimises latency using only arcs with stage <= `max_stage`; on success `a` holds the plan
  // and `bottleneck` its slowest stage.
  Outcome solve(double max_stage, Assignment& a, double& bottleneck) {
    auto T0 = std::chrono::steady_clock::now();
    struct P { std::chrono::steady_clock::time_point t; ~P(){ fprintf(stderr, "  solve %.3f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now()-t).count()); } } pp{T0};
    for (size_t k = 0; k < cost_.size(); ++k) lp_.setColUpper(static_cast<int>(k), cost_[k] <= max_stage ? 1.0 : 0.0);
    if (first_solve_) {
      lp_.initialSolve();
      first_solve_ = false;
    } else {
      lp_.resolve();
    }
    if (lp_.isProvenPrimalInfeasible()) return Outcome::Infeasible;
    if (!lp_.isProvenOptimal()) return Outcome::NoSolution;
    const double* x = lp_.getColSolution();
    const bool integral = std::all_of(x, x + cost_.size(), [](double v) { return v < 1e-9 || v > 1 - 1e-9; });
    if (integral) {
      a.proven_optimal = true;
      return extract(x, a, bottleneck);
    }
    return branch_and_bound(a, bottleneck);
  }

 private:
  struct Arc {
    int device;
    model::UnitRange units;
  };

  int S(int d, int64_t i) const { return static_cast<int>(d * N_ + i); }

  void add_arc(int d, int64_t i, int64_t j, int to_node, double stage, bool ret) {
    const int col = static_cast<int>(arcs_.size());
    arcs_.push_back({d, {i, j}});
    cost_.push_back(stage);
    const int from_node = S(d, i);
    for (auto [row, v] : {std::pair{from_node, -1.0}, std::pair{to_node, 1.0}}) {
      rows_.push_back(row);
      cols_.push_back(col);
      values_.push_back(v);
    }
    if (ret) {
      rows_.push_back(ring_row_);
      cols_.push_back(col);
      values_.push_back(1.0);
    }
    for (int64_t u = i; u < j; ++u) cover_min_[u] = std::min(cover_min_[u], stage);
  }

  void build() {
    ring_row_ = static_cast<int>(D_ * N_);
    cover_min_.assign(N_, kInf);
    for (int d = 0; d < D_; ++d) {
      for (int64_t i = 0; i < N_; ++i) {
        for (int64_t j = i + 1; j <= N_ && c_.fits({i, j}, d); ++j) {
          const double compute = c_.compute_seconds({i, j}, d);
          if (j < N_) {
            for (int b = d + 1; b < D_; ++b) add_arc(d, i, j, S(b, j), compute + c_.cut_seconds(j - 1, d, b), false);
          } else {
            for (int b = 0; b <= (o_.pin_first ? 0 : d); ++b) {
              add_arc(d, i, j, S(b, 0), compute + c_.return_seconds(d, b), true);
            }
          }
        }
      }
    }
    lower_bound_ = *std::max_element(cover_min_.begin(), cover_min_.end());

    // Costs enter scaled so that the whole model's compute on an average device is about 1.
    double total = 0;
    for (int d = 0; d < D_; ++d) total += c_.compute_seconds(model::UnitRange{0, N_}, d);
    const double scale = total > 0 ? D_ / total : 1.0;
    const int n_cols = static_cast<int>(arcs_.size()), n_rows = ring_row_ + 1;
    std::vector<double> obj(n_cols), col_lb(n_cols, 0.0), col_ub(n_cols, 1.0);
    for (int k = 0; k < n_cols; ++k) obj[k] = scale * cost_[k];
    std::vector<double> row_lb(n_rows, 0.0), row_ub(n_rows, 0.0);
    row_lb[ring_row_] = row_ub[ring_row_] = 1.0;
    CoinPackedMatrix m(true, rows_.data(), cols_.data(), values_.data(), static_cast<int>(values_.size()));
    m.setDimensions(n_rows, n_cols);
    lp_.messageHandler()->setLogLevel(0);
    lp_.loadProblem(m, col_lb.data(), col_ub.data(), obj.data(), row_lb.data(), row_ub.data());
  }

  Outcome extract(const double* x, Assignment& a, double& bottleneck) const {
    a.ranges.assign(D_, model::UnitRange{});
    bottleneck = 0;
    for (size_t k = 0; k < arcs_.size(); ++k) {
      if (x[k] < 0.5) continue;
      a.ranges[arcs_[k].device] = arcs_[k].units;
      bottleneck = std::max(bottleneck, cost_[k]);
    }
    return Outcome::Solved;
  }

  // The relaxation came out fractional (two trips sharing their returns): let CBC branch.
  Outcome branch_and_bound(Assignment& a, double& bottleneck) {
    OsiClpSolverInterface mip(lp_);
    for (int k = 0; k < static_cast<int>(arcs_.size()); ++k) mip.setInteger(k);
    CbcModel model(mip);
    CbcSolverUsefulData data;
    data.noPrinting_ = true;
    data.useSignalHandler_ = false;
    CbcMain0(model, data);
    model.setLogLevel(0);
    model.messageHandler()->setLogLevel(0);
    const std::string seconds = std::to_string(o_.time_limit_seconds);
    const char* argv[] = {"lingualinked", "-log", "0", "-slog", "0", "-sec", seconds.c_str(), "-ratio", "0",
                          "-allow", "0", "-solve", "-quit"};
    CbcMain1(static_cast<int>(std::size(argv)), argv, model, [](CbcModel*, int) { return 0; }, data);
    if (model.isProvenInfeasible()) return Outcome::Infeasible;
    const double* x = model.bestSolution();
    if (x == nullptr) return model.isSecondsLimitReached() ? Outcome::NoSolution : Outcome::Infeasible;
    a.proven_optimal = model.isProvenOptimal();
    return extract(x, a, bottleneck);
  }

  const CostModel& c_;
  const PlanOptions& o_;
  const int D_;
  const int64_t N_;
  int ring_row_ = 0;
  std::vector<Arc> arcs_;
  std::vector<double> cost_;       // stage time of every arc, seconds
  std::vector<double> cover_min_;  // per unit, the cheapest arc covering it
  double lower_bound_ = 0;
  std::vector<int> rows_, cols_;   // triplets of the constraint matrix
  std::vector<double> values_;
  OsiClpSolverInterface lp_;
  bool first_solve_ = true;
};

}  // namespace

Result<Assignment> plan_milp(const CostModel& cost, const PlanOptions& options) {
  Milp milp(cost, options);
  Assignment best;
  double bottleneck = 0;
  switch (milp.solve(kInf, best, bottleneck)) {
    case Milp::Outcome::Infeasible: return infeasible_error(cost, options);
    case Milp::Outcome::NoSolution:
      return Status::Errorf("the MILP solver found no plan within {} s", options.time_limit_seconds);
    case Milp::Outcome::Solved: break;
  }
  if (options.objective == Objective::Latency) return best;

  // Bisection over the stage values in [lower bound, the latency plan's slowest stage]: the
  // least one with a feasible program is the optimal T.
  const std::vector<double> values = milp.stage_values();
  size_t lo = std::lower_bound(values.begin(), values.end(), milp.stage_lower_bound()) - values.begin();
  size_t hi = std::lower_bound(values.begin(), values.end(), bottleneck) - values.begin();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    Assignment a;
    double b = 0;
    const Milp::Outcome outcome = milp.solve(values[mid], a, b);
    if (outcome == Milp::Outcome::NoSolution) {
      return Status::Errorf("the MILP solver found no plan within {} s", options.time_limit_seconds);
    }
    if (outcome == Milp::Outcome::Solved) {
      hi = std::lower_bound(values.begin(), values.end(), b) - values.begin();
      best = a;
    } else {
      lo = mid + 1;
    }
  }
  return best;
}

}  // namespace ll::plan
