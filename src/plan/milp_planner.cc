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
//                           and its battery share have arcs, so neither needs rows.
//   Rows   flow conservation at every node; the return arcs sum to 1 (one trip).
// Each arc is the product "d holds [i, j)" x "b comes next", so communication is linear:
// the arc's cost, its stage time, is d's compute for [i, j) plus the transfer to b.
// Every arc but a return moves forward in units and devices, so a cycle holds exactly one
// return and visits devices in increasing order: one contiguous range per device, in ring
// order, devices that would slow things down skipped. Pinning the head: returns go to the
// first device only.
//
// latency: minimise the sum of the cycle's arc costs. The relaxation is a shortest-cycle
// problem whose optimum is almost always integral; when it is not, CBC branches.
// throughput: minimise T with stage(arc) <= T for every arc in use. Written with T as a
// variable (T >= the sum of a device's arc costs) the relaxation averages plans and leaves
// a gap that takes CBC many seconds to close at 8 devices x 130 units. Instead T is a
// parameter: arcs with stage > T are fixed at 0, and the least T (a stage value) with a
// feasible program is found by bisection, each step one warm-started solve. The solve at the
// optimal T also gives the plan with the lowest latency among those with the smallest
// slowest stage.
//
// energy: minimise the sum of the cycle's arc energies (CostModel::stage_joules: the stage's
// compute and radio energy plus every device's idle draw for the stage's time, so the sum is
// the ring's joules per token) with one more row, the latency bound: sum of stage x arc <=
// bound (scaled to 1). With that row the relaxation may mix a fast and a frugal trip; then CBC
// branches. plan_milp first finds the least latency, so that a bound no plan meets is an error
// that names the fastest one.
//
// There are about D^2 N^2 / 4 arcs (240,000 for 8 x 130) but only D N + 1 rows, so the
// relaxation is solved by column generation: arcs enter the LP when their reduced cost,
// computed from the node prices, is negative. A "no trip" column of prohibitive cost keeps
// the LP feasible; it stays in the optimum only when no trip exists.
#include <coin/CbcModel.hpp>
#include <coin/CbcSolver.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include <algorithm>
#include <limits>
#include <mutex>
#include <string>

#include "plan/planners.h"

namespace ll::plan {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class Milp {
 public:
  enum class Outcome { Solved, Infeasible, NoSolution };

  // `objective`: what the arcs cost (latency and throughput: their stage time); with Energy the
  // latency bound of `o` is a row.
  Milp(const CostModel& c, const PlanOptions& o, Objective objective)
      : c_(c), o_(o), energy_(objective == Objective::Energy), D_(c.n_devices()), N_(c.n_units()) {
    build();
  }

  // The stage times of all arcs, ascending and distinct: the candidates for the optimal T.
  std::vector<double> stage_values() const {
    std::vector<double> v;
    for (const Arc& a : arcs_) v.push_back(a.stage);
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }

  // A lower bound on T: every unit is covered by one arc, at least the cheapest covering it.
  double stage_lower_bound() const { return lower_bound_; }

  // Minimises latency using only arcs with stage <= `max_stage`; on success `a` holds the plan
  // and `bottleneck` its slowest stage.
  Outcome solve(double max_stage, Assignment& a, double& bottleneck) {
    for (size_t k = 0; k < arcs_.size(); ++k) {
      if (arcs_[k].col >= 0) lp_.setColUpper(arcs_[k].col, arcs_[k].stage <= max_stage ? 1.0 : 0.0);
    }
    do {
      if (first_solve_) {
        lp_.initialSolve();
        first_solve_ = false;
      } else {
        lp_.resolve();
      }
      if (!lp_.isProvenOptimal()) return Outcome::NoSolution;
    } while (add_columns(max_stage));

    const double* x = lp_.getColSolution();
    // With the latency row the relaxation may mix "no trip" with a slow trip; a mix branches.
    if (x[kNoTrip] > 1 - 1e-9) return Outcome::Infeasible;
    a.ranges.assign(D_, model::UnitRange{});
    bottleneck = 0;
    for (const Arc& arc : arcs_) {
      if (arc.col < 0 || x[arc.col] < 1e-9) continue;
      if (x[arc.col] < 1 - 1e-9) return branch_and_bound(max_stage, a, bottleneck);
      a.ranges[arc.device] = arc.units;
      bottleneck = std::max(bottleneck, arc.stage);
    }
    a.proven_optimal = true;
    return Outcome::Solved;
  }

 private:
  static constexpr int kNoTrip = 0;  // the LP's first column

  struct Arc {
    int device;
    model::UnitRange units;
    int to;        // node
    bool ret;      // a return: also in the ring row
    double stage;  // seconds
    double cost;   // what the objective counts: the stage's seconds, or its joules
    int col = -1;  // column in the LP, once it entered
  };

  // The arc's coefficient in the latency row (its stage over the bound), when there is one.
  double latency_coefficient(const Arc& a) const { return a.stage / o_.max_latency_seconds; }
  // The objective's value of device d holding [i, j) and sending `bytes` to `to`.
  double arc_cost(int d, int to, double compute, double stage, uint64_t bytes) const {
    return energy_ ? c_.stage_joules(d, to, compute, stage, bytes) : stage;
  }

  int S(int d, int64_t i) const { return static_cast<int>(d * N_ + i); }

  void build() {
    ring_row_ = static_cast<int>(D_ * N_);
    latency_row_ = energy_ ? ring_row_ + 1 : -1;
    std::vector<double> cover_min(N_, kInf);
    for (int d = 0; d < D_; ++d) {
      for (int64_t i = 0; i < N_; ++i) {
        for (int64_t j = i + 1; j <= N_ && c_.allows({i, j}, d); ++j) {
          const double compute = c_.compute_seconds({i, j}, d);
          double cheapest = kInf;
          auto add_arc = [&](int b, bool ret, double stage, uint64_t bytes) {
            arcs_.push_back({d, {i, j}, S(b, ret ? 0 : j), ret, stage, arc_cost(d, b, compute, stage, bytes)});
            cheapest = std::min(cheapest, stage);
          };
          if (j < N_) {
            for (int b = d + 1; b < D_; ++b) {
              add_arc(b, false, compute + c_.cut_seconds(j - 1, d, b), c_.cut_bytes(j - 1));
            }
          } else {
            for (int b = 0; b <= (o_.pin_first ? 0 : d); ++b) {
              add_arc(b, true, compute + c_.return_seconds(d, b), b == d ? 0 : c_.return_bytes());
            }
          }
          for (int64_t u = i; u < j; ++u) cover_min[u] = std::min(cover_min[u], cheapest);
        }
      }
    }
    lower_bound_ = *std::max_element(cover_min.begin(), cover_min.end());

    // Costs enter scaled so that the whole model's compute on an average device is about 1.
    double total = 0;
    for (int d = 0; d < D_; ++d) {
      const double whole = c_.compute_seconds(model::UnitRange{0, N_}, d);
      total += arc_cost(d, d, whole, whole, 0);
    }
    scale_ = total > 0 ? D_ / total : 1.0;
    // No trip costs more than one arc per device at its dearest.
    std::vector<double> dearest(D_, 0.0);
    for (const Arc& a : arcs_) dearest[a.device] = std::max(dearest[a.device], scale_ * a.cost);
    double no_trip_cost = 1;
    for (double v : dearest) no_trip_cost += 2 * v;

    const std::vector<double> row_lb = row_lower(), row_ub = row_upper();
    CoinPackedMatrix empty(true, 0, 0);
    empty.setDimensions(static_cast<int>(row_lb.size()), 0);
    lp_.messageHandler()->setLogLevel(0);
    lp_.loadProblem(empty, nullptr, nullptr, nullptr, row_lb.data(), row_ub.data());
    const int ring = ring_row_;
    const double one = 1.0;
    lp_.addCol(1, &ring, &one, 0.0, 1.0, no_trip_cost);
    // A start: every arc of a one-unit segment.
    std::vector<int> seed;
    for (size_t k = 0; k < arcs_.size(); ++k) {
      if (arcs_[k].units.end - arcs_[k].units.begin == 1) seed.push_back(static_cast<int>(k));
    }
    add(seed);
  }

  // Rows: flow conservation (= 0), the one trip (= 1), and with energy the latency bound (<= 1).
  std::vector<double> row_lower() const {
    std::vector<double> lb(ring_row_ + 1, 0.0);
    lb[ring_row_] = 1.0;
    if (energy_) lb.push_back(-COIN_DBL_MAX);
    return lb;
  }
  std::vector<double> row_upper() const {
    std::vector<double> ub(ring_row_ + 1, 0.0);
    ub[ring_row_] = 1.0;
    if (energy_) ub.push_back(1.0);
    return ub;
  }

  void add(const std::vector<int>& arcs) {
    std::vector<CoinBigIndex> starts{0};
    std::vector<int> rows;
    std::vector<double> values, lb(arcs.size(), 0.0), ub(arcs.size(), 1.0), obj;
    for (int k : arcs) {
      Arc& a = arcs_[k];
      a.col = lp_.getNumCols() + static_cast<int>(obj.size());
      rows.insert(rows.end(), {S(a.device, a.units.begin), a.to});
      values.insert(values.end(), {-1.0, 1.0});
      if (a.ret) {
        rows.push_back(ring_row_);
        values.push_back(1.0);
      }
      if (energy_) {
        rows.push_back(latency_row_);
        values.push_back(latency_coefficient(a));
      }
      starts.push_back(static_cast<CoinBigIndex>(rows.size()));
      obj.push_back(scale_ * a.cost);
    }
    lp_.addCols(static_cast<int>(arcs.size()), starts.data(), rows.data(), values.data(), lb.data(), ub.data(),
                obj.data());
  }

  // Pricing: for every node, the kEntering allowed arcs leaving it with the most negative
  // reduced costs enter. Returns whether any did.
  bool add_columns(double max_stage) {
    constexpr size_t kEntering = 4;
    const double* price = lp_.getRowPrice();
    std::vector<std::vector<std::pair<double, int>>> best(ring_row_);  // max-heaps on reduced cost
    for (size_t k = 0; k < arcs_.size(); ++k) {
      const Arc& a = arcs_[k];
      if (a.col >= 0 || a.stage > max_stage) continue;
      const int from = S(a.device, a.units.begin);
      const double rc = scale_ * a.cost - (price[a.to] - price[from] + (a.ret ? price[ring_row_] : 0.0) +
                                           (energy_ ? latency_coefficient(a) * price[latency_row_] : 0.0));
      if (rc >= -1e-9) continue;
      auto& b = best[from];
      if (b.size() == kEntering && rc >= b.front().first) continue;
      if (b.size() == kEntering) {
        std::pop_heap(b.begin(), b.end());
        b.pop_back();
      }
      b.push_back({rc, static_cast<int>(k)});
      std::push_heap(b.begin(), b.end());
    }
    std::vector<int> entering;
    for (const auto& b : best) {
      for (const auto& [rc, k] : b) entering.push_back(k);
    }
    add(entering);
    return !entering.empty();
  }

  // The relaxation came out fractional (two trips sharing their returns): CBC branches over
  // every allowed arc.
  Outcome branch_and_bound(double max_stage, Assignment& a, double& bottleneck) {
    std::vector<int> rows, cols, index;
    std::vector<double> values, obj;
    for (size_t k = 0; k < arcs_.size(); ++k) {
      const Arc& arc = arcs_[k];
      if (arc.stage > max_stage) continue;
      const int col = static_cast<int>(index.size());
      index.push_back(static_cast<int>(k));
      obj.push_back(scale_ * arc.cost);
      for (auto [row, v] : {std::pair{S(arc.device, arc.units.begin), -1.0}, std::pair{arc.to, 1.0},
                            std::pair{arc.ret ? ring_row_ : -1, 1.0},
                            std::pair{latency_row_, energy_ ? latency_coefficient(arc) : 0.0}}) {
        if (row < 0) continue;
        rows.push_back(row);
        cols.push_back(col);
        values.push_back(v);
      }
    }
    const std::vector<double> row_lb = row_lower(), row_ub = row_upper();
    const int n_rows = static_cast<int>(row_lb.size()), n_cols = static_cast<int>(index.size());
    CoinPackedMatrix m(true, rows.data(), cols.data(), values.data(), static_cast<int>(values.size()));
    m.setDimensions(n_rows, n_cols);
    std::vector<double> col_lb(n_cols, 0.0), col_ub(n_cols, 1.0);
    OsiClpSolverInterface mip;
    mip.messageHandler()->setLogLevel(0);
    mip.loadProblem(m, col_lb.data(), col_ub.data(), obj.data(), row_lb.data(), row_ub.data());
    for (int k = 0; k < n_cols; ++k) mip.setInteger(k);

    // CbcMain keeps state in statics: one branch and bound at a time in this process.
    static std::mutex cbc_mutex;
    std::lock_guard<std::mutex> lock(cbc_mutex);
    CbcModel model(mip);
    CbcSolverUsefulData data;
    data.noPrinting_ = true;
    data.useSignalHandler_ = false;
    CbcMain0(model, data);
    model.setLogLevel(0);
    model.messageHandler()->setLogLevel(0);
    const std::string seconds = std::to_string(o_.time_limit_seconds);
    const char* argv[] = {"lingualinked", "-log", "0",      "-slog", "0",      "-sec", seconds.c_str(),
                          "-ratio",       "0",    "-allow", "0",     "-solve", "-quit"};
    CbcMain1(
        static_cast<int>(std::size(argv)), argv, model, [](CbcModel*, int) { return 0; }, data);
    if (model.isProvenInfeasible()) return Outcome::Infeasible;
    const double* x = model.bestSolution();
    if (x == nullptr) return model.isSecondsLimitReached() ? Outcome::NoSolution : Outcome::Infeasible;
    a.proven_optimal = model.isProvenOptimal();
    a.ranges.assign(D_, model::UnitRange{});
    bottleneck = 0;
    for (int k = 0; k < n_cols; ++k) {
      if (x[k] < 0.5) continue;
      const Arc& arc = arcs_[index[k]];
      a.ranges[arc.device] = arc.units;
      bottleneck = std::max(bottleneck, arc.stage);
    }
    return Outcome::Solved;
  }

  const CostModel& c_;
  const PlanOptions& o_;
  const bool energy_;
  const int D_;
  const int64_t N_;
  int ring_row_ = 0;
  int latency_row_ = -1;  // energy only
  double scale_ = 1;
  double lower_bound_ = 0;
  std::vector<Arc> arcs_;
  OsiClpSolverInterface lp_;
  bool first_solve_ = true;
};

Status no_solution(const PlanOptions& options) {
  return Status::Errorf(
      "the MILP solver stopped without a plan (time limit {} s, or numerical trouble); try --planner dp",
      options.time_limit_seconds);
}

}  // namespace

Result<Assignment> plan_milp(const CostModel& cost, const PlanOptions& options) {
  Milp milp(cost, options, Objective::Latency);
  Assignment best;
  double bottleneck = 0;
  switch (milp.solve(kInf, best, bottleneck)) {
    case Milp::Outcome::Infeasible: return infeasible_error(cost, options);
    case Milp::Outcome::NoSolution: return no_solution(options);
    case Milp::Outcome::Solved: break;
  }
  if (options.objective == Objective::Latency) return best;
  if (options.objective == Objective::Energy) {
    const double fastest = cost.evaluate(best.ranges).latency_seconds;
    if (fastest > options.max_latency_seconds * (1 + 1e-9)) {
      return Status::Errorf("no plan meets the latency bound of {:.3f} ms per token: the fastest takes {:.3f} ms",
                            options.max_latency_seconds * 1e3, fastest * 1e3);
    }
    Milp frugal(cost, options, Objective::Energy);
    Assignment a;
    switch (frugal.solve(kInf, a, bottleneck)) {
      case Milp::Outcome::Infeasible:  // the fastest plan is within the bound: only numbers can say otherwise
      case Milp::Outcome::NoSolution: return no_solution(options);
      case Milp::Outcome::Solved: break;
    }
    return a;
  }

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
    if (outcome == Milp::Outcome::NoSolution) return no_solution(options);
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
