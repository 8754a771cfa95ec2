// The assignment as a mixed-integer linear program, solved by COIN-OR CBC.
//
// Devices keep the ring order they are given (d = 0..D-1); each holds one contiguous range of
// units or nothing. The program is a circulation: one token's trip around the ring.
//   Nodes  S(d, i)  device d's segment starts at unit i      (0 <= i < N)
//          E(d, j)  device d's segment ends before unit j     (0 < j <= N)
//   Arcs   s[d][i][j] in {0,1}  S(d,i) -> E(d,j): d holds units [i, j). Only segments that fit
//                               in d's memory (with its working buffers) exist, so memory
//                               needs no rows. Cost: their compute time on d.
//          c[j][a][b] >= 0      E(a,j) -> S(b,j), a < b: the cut before unit j on the link
//                               a -> b (devices between them hold nothing). Cost: transfer.
//          r[b][a] >= 0         E(b,N) -> S(a,0), a <= b: the sampled token returns from the
//                               last device b to the first a (free when a == b).
//   Rows   flow conservation at every node; sum of r = 1 (one trip).
// Every arc but r moves forward in units or devices, so a cycle holds exactly one r and
// visits devices in increasing order: one contiguous range per device, in ring order,
// devices that would slow things down skipped. The products of assignments (which device
// follows which) are the c and r arcs themselves: communication is linear.
// Objectives: latency = the cost of the cycle. Throughput: T >= the stage of every device
// (its segment's compute + its outgoing c or r), minimise T; then, with T held at its
// optimum, minimise latency (a second solve) so that ties go to the faster ring.
// Pinning the head: the first device is the only target of the r arcs.
#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include <cmath>
#include <string>
#include <tuple>

#include "plan/planners.h"

namespace ll::plan {
namespace {

class Milp {
 public:
  enum class Outcome { Solved, Infeasible, NoSolution };

  Milp(const CostModel& c, const PlanOptions& o) : c_(c), o_(o), D_(c.n_devices()), N_(c.n_units()) {
    // Times enter scaled so that the whole model's compute on an average device is about 1.
    double total = 0;
    for (int d = 0; d < D_; ++d) total += c.compute_seconds(model::UnitRange{0, N_}, d);
    scale_ = total > 0 ? D_ / total : 1.0;
    build();
  }

  double scale() const { return scale_; }

  // Minimises T (throughput) or latency; `T_limit` >= 0 caps T (scaled) for the second pass.
  Outcome solve(bool minimise_T, double T_limit, Assignment& a) {
    OsiClpSolverInterface solver;
    solver.messageHandler()->setLogLevel(0);
    std::vector<double> obj = latency_obj_, col_ub = col_ub_;
    if (minimise_T) {
      std::fill(obj.begin(), obj.end(), 0.0);
      obj[T_] = 1.0;
    }
    if (T_ >= 0 && T_limit >= 0) col_ub[T_] = T_limit;
    solver.loadProblem(matrix_, col_lb_.data(), col_ub.data(), obj.data(), row_lb_.data(), row_ub_.data());
    for (const Segment& s : segments_) solver.setInteger(s.col);
    for (int b : B_) solver.setInteger(b);

    CbcModel model(solver);
    if (getenv("LL_DIRECT")) {
      model.setLogLevel(getenv("LL_CBC_LOG") ? 1 : 0);
      model.messageHandler()->setLogLevel(getenv("LL_CBC_LOG") ? 1 : 0);
      if (!B_.empty()) {
        const int n_int = model.numberIntegers();
        std::vector<int> prio(n_int, 1000);
        const int* ints = model.integerVariable();
        for (int k = 0; k < n_int; ++k) {
          for (int b : B_) if (ints[k] == b) prio[k] = 1;
        }
        model.passInPriorities(prio.data(), false);
      }
      model.initialSolve();
      model.branchAndBound();
      if (model.isProvenInfeasible()) return Outcome::Infeasible;
      const double* sol = model.bestSolution();
      if (sol == nullptr) return Outcome::NoSolution;
      a.proven_optimal = model.isProvenOptimal();
      a.ranges.assign(D_, model::UnitRange{});
      for (const Segment& s : segments_) {
        if (sol[s.col] > 0.5) a.ranges[s.device] = s.units;
      }
      return Outcome::Solved;
    }
    CbcSolverUsefulData data;
    data.noPrinting_ = !getenv("LL_CBC_LOG");
    data.useSignalHandler_ = false;
    CbcMain0(model, data);
    model.setLogLevel(0);
    model.messageHandler()->setLogLevel(0);
    const std::string seconds = std::to_string(o_.time_limit_seconds);
    const char* lg = getenv("LL_CBC_LOG") ? getenv("LL_CBC_LOG") : "0";
    const char* argv[] = {"lingualinked", "-log", lg, "-slog", "0", "-sec", seconds.c_str(), "-ratio", "0",
                          "-allow", "0", "-solve", "-quit"};
    CbcMain1(static_cast<int>(std::size(argv)), argv, model, [](CbcModel*, int) { return 0; }, data);
    if (model.isProvenInfeasible()) return Outcome::Infeasible;
    const double* sol = model.bestSolution();
    if (sol == nullptr) return model.isSecondsLimitReached() ? Outcome::NoSolution : Outcome::Infeasible;
    a.proven_optimal = model.isProvenOptimal();
    a.ranges.assign(D_, model::UnitRange{});
    for (const Segment& s : segments_) {
      if (sol[s.col] > 0.5) a.ranges[s.device] = s.units;
    }
    return Outcome::Solved;
  }

 private:
  struct Segment {
    int device;
    model::UnitRange units;
    int col;
  };

  int S(int d, int64_t i) const { return static_cast<int>(d * N_ + i); }
  int E(int d, int64_t j) const { return static_cast<int>((D_ + d) * N_ + j - 1); }

  // A column from node `from` to node `to` (a node of -1: none).
  int add_arc(int from, int to, double seconds, double ub = 1.0) {
    const int col = static_cast<int>(col_lb_.size());
    if (from >= 0) add_entry(from, col, -1.0);
    if (to >= 0) add_entry(to, col, 1.0);
    col_lb_.push_back(0.0);
    col_ub_.push_back(ub);
    latency_obj_.push_back(scale_ * seconds);
    return col;
  }
  void add_entry(int row, int col, double v) {
    rows_.push_back(row);
    cols_.push_back(col);
    values_.push_back(v);
  }

  void build() {
    const int n_nodes = static_cast<int>(2 * D_ * N_);
    for (int d = 0; d < D_; ++d) {
      for (int64_t i = 0; i < N_; ++i) {
        for (int64_t j = i + 1; j <= N_ && c_.fits({i, j}, d); ++j) {
          segments_.push_back({d, {i, j}, add_arc(S(d, i), E(d, j), c_.compute_seconds({i, j}, d))});
        }
      }
    }
    std::vector<std::tuple<int, int, int>> sends;  // (column, sender, receiver) of every c and r arc
    for (int64_t j = 1; j < N_; ++j) {
      for (int a = 0; a < D_; ++a) {
        for (int b = a + 1; b < D_; ++b) sends.push_back({add_arc(E(a, j), S(b, j), c_.cut_seconds(j - 1, a, b)), a, b});
      }
    }
    const int ring_row = n_nodes;
    for (int b = 0; b < D_; ++b) {
      for (int a = 0; a <= (o_.pin_first ? 0 : b); ++a) {
        const int col = add_arc(E(b, N_), S(a, 0), c_.return_seconds(b, a));
        add_entry(ring_row, col, 1.0);
        sends.push_back({col, b, a});
      }
    }
    row_lb_.assign(n_nodes, 0.0);
    row_ub_.assign(n_nodes, 0.0);
    row_lb_.push_back(1.0);
    row_ub_.push_back(1.0);
    if (getenv("LL_B")) {
      for (int d = 0; d < D_; ++d) {
        const int row = static_cast<int>(row_lb_.size());
        row_lb_.push_back(0.0);
        row_ub_.push_back(0.0);
        const int col = add_arc(-1, -1, 0.0, static_cast<double>(N_));
        B_.push_back(col);
        add_entry(row, col, 1.0);
        if (d > 0) add_entry(row, B_[d - 1], -1.0);
        for (const Segment& sg : segments_) {
          if (sg.device == d) add_entry(row, sg.col, -static_cast<double>(sg.units.end - sg.units.begin));
        }
      }
    }

    if (o_.objective == Objective::Throughput) {
      T_ = add_arc(-1, -1, 0.0, COIN_DBL_MAX);
      // Stage of d: its segment's compute and what it sends, at most T.
      const int first_stage_row = static_cast<int>(row_lb_.size());
      for (int d = 0; d < D_; ++d) {
        add_entry(first_stage_row + d, T_, -1.0);
        row_lb_.push_back(-COIN_DBL_MAX);
        row_ub_.push_back(0.0);
      }
      for (const Segment& s : segments_) add_entry(first_stage_row + s.device, s.col, latency_obj_[s.col]);
      for (const auto& [col, from, to] : sends) {
        if (from != to) add_entry(first_stage_row + from, col, latency_obj_[col]);
      }
    }
    matrix_ = CoinPackedMatrix(false, rows_.data(), cols_.data(), values_.data(), static_cast<int>(values_.size()));
    matrix_.setDimensions(static_cast<int>(row_lb_.size()), static_cast<int>(col_lb_.size()));
  }

  const CostModel& c_;
  const PlanOptions& o_;
  const int D_;
  const int64_t N_;
  double scale_ = 1;
  int T_ = -1;
  std::vector<int> B_;
  std::vector<Segment> segments_;
  std::vector<int> rows_, cols_;  // triplets of the constraint matrix
  std::vector<double> values_;
  std::vector<double> col_lb_, col_ub_, latency_obj_, row_lb_, row_ub_;
  CoinPackedMatrix matrix_;
};

}  // namespace

Result<Assignment> plan_milp(const CostModel& cost, const PlanOptions& options) {
  Milp milp(cost, options);
  Assignment a;
  const bool throughput = options.objective == Objective::Throughput;
  switch (milp.solve(throughput, -1, a)) {
    case Milp::Outcome::Infeasible: return infeasible_error(cost, options);
    case Milp::Outcome::NoSolution:
      return Status::Errorf("the MILP solver found no plan within {} s", options.time_limit_seconds);
    case Milp::Outcome::Solved: break;
  }
  if (!throughput) return a;
  // Hold the slowest stage at the optimum just found (re-evaluated exactly, plus a hair for
  // rounding) and minimise latency.
  const double T = cost.evaluate(a.ranges).bottleneck_seconds * milp.scale() * (1 + 1e-9);
  Assignment tie_broken;
  if (milp.solve(false, T, tie_broken) != Milp::Outcome::Solved) return a;
  tie_broken.proven_optimal = tie_broken.proven_optimal && a.proven_optimal;
  return tie_broken;
}

}  // namespace ll::plan
