#pragma once
// The options of a LocalCluster of this very executable, as `demo` and `cluster-bench` start
// it: the devices described, this program as the workers' command, a log file for the run, and
// the threads of devices that do not say.
#include <cstddef>
#include <string>

#include "core/status.h"
#include "emulate/local_cluster.h"

namespace ll::emulate {

// Threads for each device that does not say: `requested`, or when it is 0 this machine's cores
// shared out evenly among the n_devices (at least one each).
int threads_per_device(int requested, size_t n_devices);

// `devices` in the grammar of parse_devices (a count, or descriptions); the workers' stderr goes
// to <temp dir>/lingualinked-<run_name>-<pid>.log.
Result<LocalClusterOptions> local_cluster_options(const std::string& devices, int threads,
                                                  const std::string& run_name);

}  // namespace ll::emulate
