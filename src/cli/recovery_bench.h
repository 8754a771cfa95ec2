#pragma once
// `cluster-bench --devices "a;b:fail=kill@5s;c"`: the same requests run twice, each time on a
// fresh local cluster from the same profiles: first undisturbed (the reference; the devices'
// schedules do not run), then with the devices' schedules and faults. Reported per recovery:
// the fault, detect, re-plan, load, replay and total times and what was replayed; the rejoins;
// and per request the tokens lost or altered against the reference (greedy decoding, so any
// difference is a fault of the recovery), with the error of a request that ended with one.
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/pipeline.h"
#include "cluster/recovery_figures.h"
#include "model/model.h"

namespace ll::cli {

struct RecoveryBenchOptions {
  std::string model_path;
  std::string devices;  // as for demo --devices, with fail= schedules
  int threads = 1;
  cluster::PlanningOptions planning;
  bool balance = true;  // the runtime balancer also moves units while the devices' speeds change
  int64_t n_prompt = 16, n_gen = 128;
  int parallel = 1;      // sequences in flight
  std::string timeline;  // the disturbed run's timeline (JSON and SVG)
};

struct RecoveryBenchResult {
  std::vector<std::string> worker_names;
  std::vector<cluster::FaultTime> faults;  // on the disturbed run's clock
  std::vector<cluster::RecoveryFigures> recoveries;
  std::vector<cluster::RejoinEvent> rejoins;
  std::vector<cluster::TokenComparison> requests;  // per request, against the reference
  double reference_seconds = 0, run_seconds = 0;   // each run's generation, start to end
  // Requests whose tokens differ from the reference without an error: the recovery broke them.
  size_t altered_requests() const;
  size_t failed_requests() const;  // ended with an error
};

// True when any device of `devices` (the grammar of --devices) has a fail= schedule.
bool has_fault_schedule(const std::string& devices);

Result<RecoveryBenchResult> run_recovery_bench(const model::Model& model, const RecoveryBenchOptions& o);

std::string recovery_bench_markdown(const RecoveryBenchResult& result);
std::string recovery_bench_json(const RecoveryBenchResult& result);

}  // namespace ll::cli
