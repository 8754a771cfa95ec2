#pragma once
// `cluster-bench --balance off,on`: the same emulated devices, speed schedule and requests run
// once per setting, each on a fresh local cluster (so every schedule starts from the same state)
// and from the same profiles (measured by the first run, read back by the others), reporting for
// each setting tokens/s before the first speed change and from it to the end, the rebalances,
// the time from the change to the first switch and the longest stall.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cluster/balance_figures.h"
#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "model/model.h"

namespace ll::cli {

struct BalanceBenchOptions {
  std::string model_path;
  std::string devices;  // as for demo --devices
  int threads = 1;
  cluster::PlanningOptions planning;
  int64_t n_prompt = 16, n_gen = 128;
  int parallel = 1;                 // sequences in flight
  std::vector<bool> settings;       // balancing off / on, in the order to run
  std::string timeline;             // per setting: the name with "-off" / "-on" before the extension
};

struct BalanceBenchResult {
  bool balance = false;
  int sequences = 1;
  double change_seconds = 0;  // the first speed change (0: none)
  cluster::BalanceFigures figures;
  double tokens_per_second = 0;  // the whole run
  std::vector<cluster::RebalanceEvent> rebalances;
};

Result<std::vector<BalanceBenchResult>> run_balance_bench(const model::Model& model, const BalanceBenchOptions& o);

std::string balance_bench_markdown(const std::vector<BalanceBenchResult>& results);
std::string balance_bench_json(const std::vector<BalanceBenchResult>& results);

}  // namespace ll::cli
