// The assignment as a mixed-integer linear program, solved by COIN-OR CBC.
//
// Devices keep the ring order they are given (d = 0..D-1); each holds one contiguous range of
// units or nothing. Variables:
//   x[u][d] in {0,1}    unit u runs on device d
//   t[u][a][b] >= 0     unit u is on a and unit u+1 on b, for a <= b only. Flow rows tie
//                       them to x: sum_b t[u][a][b] = x[u][a], sum_a t[u][a][b] = x[u+1][b].
//                       They linearise the products x[u][a] x[u+1][b] exactly at integer x,
//                       and since no t exists for b < a, the device index never decreases
//                       along the units: contiguous ranges in ring order, empty devices
//                       skipped. t[u][a][b] with a < b is a cut on the link a -> b.
//   r[a][b] >= 0        unit 0 is on a and the last unit on b (a <= b), by the same flow
//                       rows: the sampled token returns over the link b -> a.
//   T >= 0              (throughput) the slowest stage
// Rows: sum_d x[u][d] = 1; memory: sum_u mem[u] x[u][d] <= usable[d] - working buffers;
// throughput: compute[d] + outgoing transfer[d] <= T for every d.
// latency    = sum compute + sum cut transfers + the return; throughput = T, and then, with T
// held at its optimum, the latency (a second solve) so that ties go to the faster ring.
#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include <cmath>
#include <string>

#include "plan/planners.h"

namespace ll::plan {
namespace {

class Milp {
 public:
  Milp(const CostModel& c, const PlanOptions& o) : c_(c), o_(o), D_(c.n_devices()), N_(c.n_units()) {
    // Times enter scaled so that one device's whole-model compute is about 1.
    double total = 0;
    for (int d = 0; d < D_; ++d) total += c.compute_seconds(model::UnitRange{0, N_}, d);
    scale_ = total > 0 ? D_ / total : 1.0;
    build();
  }

  // Solves; on success fills `ranges` and `optimal`. `T_limit`: for the latency pass of the
  // throughput objective, the optimal slowest stage (scaled); negative: no such pass.
  enum class Outcome { Solved, Infeasible, NoSolution };
  Outcome solve(bool minimise_T, double T_limit, std::vector<model::UnitRange>& ranges, bool& optimal,
                double& objective) {
    OsiClpSolverInterface solver;
    solver.messageHandler()->setLogLevel(0);
    std::vector<double> obj(n_cols_, 0.0), col_ub = col_ub_;
    if (minimise_T) {
      obj[T_] = 1.0;
    } else {
      obj = latency_obj_;
    }
    if (T_ >= 0 && T_limit >= 0) col_ub[T_] = T_limit;
    solver.loadProblem(matrix_, col_lb_.data(), col_ub.data(), obj.data(), row_lb_.data(), row_ub_.data());
    for (int u = 0; u < N_; ++u) {
      for (int d = 0; d < D_; ++d) solver.setInteger(x(u, d));
    }
    CbcModel model(solver);
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
    const double* sol = model.bestSolution();
    if (sol == nullptr) return model.isSecondsLimitReached() ? Outcome::NoSolution : Outcome::Infeasible;
    optimal = model.isProvenOptimal();
    objective = model.getObjValue();
    ranges.assign(D_, model::UnitRange{});
    for (int u = 0; u < N_; ++u) {
      for (int d = 0; d < D_; ++d) {
        if (sol[x(u, d)] < 0.5) continue;
        model::UnitRange& r = ranges[d];
        if (r.empty()) r = {u, u};
        r.end = u + 1;
      }
    }
    return Outcome::Solved;
  }

  double scale() const { return scale_; }

 private:
  int x(int64_t u, int d) const { return static_cast<int>(u * D_ + d); }
  int pair(int a, int b) const { return a * D_ - a * (a - 1) / 2 + (b - a); }  // a <= b
  int t(int64_t u, int a, int b) const { return t0_ + static_cast<int>(u) * pairs_ + pair(a, b); }
  int r(int a, int b) const { return r0_ + pair(a, b); }

  void add_row(const std::vector<std::pair<int, double>>& terms, double lb, double ub) {
    const int row = static_cast<int>(row_lb_.size());
    for (const auto& [col, v] : terms) {
      rows_.push_back(row);
      cols_.push_back(col);
      values_.push_back(v);
    }
    row_lb_.push_back(lb);
    row_ub_.push_back(ub);
  }

  void build() {
    pairs_ = D_ * (D_ + 1) / 2;
    t0_ = N_ * D_;
    r0_ = t0_ + static_cast<int>(N_ - 1) * pairs_;
    n_cols_ = r0_ + pairs_;
    const bool throughput = o_.objective == Objective::Throughput;
    if (throughput) T_ = n_cols_++;
    col_lb_.assign(n_cols_, 0.0);
    col_ub_.assign(n_cols_, 1.0);
    latency_obj_.assign(n_cols_, 0.0);
    if (throughput) col_ub_[T_] = COIN_DBL_MAX;

    // Units a device cannot hold (with its working buffers) are never placed there.
    for (int d = 0; d < D_; ++d) {
      for (int64_t u = 0; u < N_; ++u) {
        if (!c_.fits({u, u + 1}, d)) col_ub_[x(u, d)] = 0.0;
        latency_obj_[x(u, d)] = scale_ * c_.compute_seconds(u, d);
      }
    }
    if (o_.pin_first) col_lb_[x(0, 0)] = 1.0;
    for (int64_t u = 0; u + 1 < N_; ++u) {
      for (int a = 0; a < D_; ++a) {
        for (int b = a + 1; b < D_; ++b) latency_obj_[t(u, a, b)] = scale_ * c_.cut_seconds(u, a, b);
      }
    }
    for (int a = 0; a < D_; ++a) {
      for (int b = a + 1; b < D_; ++b) latency_obj_[r(a, b)] = scale_ * c_.return_seconds(b, a);
    }

    for (int64_t u = 0; u < N_; ++u) {
      std::vector<std::pair<int, double>> row;
      for (int d = 0; d < D_; ++d) row.push_back({x(u, d), 1.0});
      add_row(row, 1.0, 1.0);
    }
    for (int64_t u = 0; u + 1 < N_; ++u) {
      for (int a = 0; a < D_; ++a) {
        std::vector<std::pair<int, double>> out{{x(u, a), -1.0}}, in{{x(u + 1, a), -1.0}};
        for (int b = a; b < D_; ++b) out.push_back({t(u, a, b), 1.0});
        for (int b = 0; b <= a; ++b) in.push_back({t(u, b, a), 1.0});
        add_row(out, 0.0, 0.0);
        add_row(in, 0.0, 0.0);
      }
    }
    for (int a = 0; a < D_; ++a) {
      std::vector<std::pair<int, double>> first{{x(0, a), -1.0}}, last{{x(N_ - 1, a), -1.0}};
      for (int b = a; b < D_; ++b) first.push_back({r(a, b), 1.0});
      for (int b = 0; b <= a; ++b) last.push_back({r(b, a), 1.0});
      add_row(first, 0.0, 0.0);
      add_row(last, 0.0, 0.0);
    }
    // Memory, as a fraction of what the device can give its units.
    for (int d = 0; d < D_; ++d) {
      const double capacity = static_cast<double>(c_.capacity_bytes(d));
      if (capacity <= 0) continue;  // every x[.][d] is already fixed at 0
      std::vector<std::pair<int, double>> row;
      for (int64_t u = 0; u < N_; ++u) {
        if (c_.memory_bytes(u) > 0) row.push_back({x(u, d), static_cast<double>(c_.memory_bytes(u)) / capacity});
      }
      add_row(row, -COIN_DBL_MAX, 1.0);
    }
    if (throughput) add_stage_rows();
    matrix_ = CoinPackedMatrix(false, rows_.data(), cols_.data(), values_.data(), static_cast<int>(values_.size()));
    matrix_.setDimensions(static_cast<int>(row_lb_.size()), n_cols_);
  }

  void add_stage_rows() {
    // Stage of d: its compute, its cuts to later devices, its return of the token to the first.
    for (int d = 0; d < D_; ++d) {
      std::vector<std::pair<int, double>> row{{T_, -1.0}};
      for (int64_t u = 0; u < N_; ++u) row.push_back({x(u, d), latency_obj_[x(u, d)]});
      for (int64_t u = 0; u + 1 < N_; ++u) {
        for (int b = d + 1; b < D_; ++b) row.push_back({t(u, d, b), latency_obj_[t(u, d, b)]});
      }
      for (int a = 0; a < d; ++a) row.push_back({r(a, d), latency_obj_[r(a, d)]});
      add_row(row, -COIN_DBL_MAX, 0.0);
    }
  }

  const CostModel& c_;
  const PlanOptions& o_;
  const int D_;
  const int64_t N_;
  double scale_ = 1;
  int pairs_ = 0, t0_ = 0, r0_ = 0, n_cols_ = 0, T_ = -1;
  CoinPackedMatrix matrix_;
  std::vector<int> rows_, cols_;  // triplets of the constraint matrix
  std::vector<double> values_;
  std::vector<double> col_lb_, col_ub_, row_lb_, row_ub_, latency_obj_;
};

}  // namespace

Result<Assignment> plan_milp(const CostModel& cost, const PlanOptions& options) {
  Milp milp(cost, options);
  Assignment a;
  double objective = 0;
  const bool throughput = options.objective == Objective::Throughput;
  switch (milp.solve(throughput, -1, a.ranges, a.proven_optimal, objective)) {
    case Milp::Outcome::Infeasible: return infeasible_error(cost, options);
    case Milp::Outcome::NoSolution:
      return Status::Errorf("the MILP solver found no plan within {} s", options.time_limit_seconds);
    case Milp::Outcome::Solved: break;
  }
  if (!throughput) return a;
  // Hold the slowest stage at the optimum just found (the stage time of the plan, re-evaluated
  // exactly, plus a hair for rounding) and minimise latency.
  const double T = cost.evaluate(a.ranges).bottleneck_seconds * milp.scale() * (1 + 1e-9);
  Assignment tie_broken;
  if (milp.solve(false, T, tie_broken.ranges, tie_broken.proven_optimal, objective) == Milp::Outcome::Solved) {
    tie_broken.proven_optimal = tie_broken.proven_optimal && a.proven_optimal;
    return tie_broken;
  }
  return a;
}

}  // namespace ll::plan
