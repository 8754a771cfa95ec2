#pragma once
// How fast this device computes right now: a fixed kernel workload (a Q8_0 matrix times a few
// F32 vectors, about a millisecond or two on one fast core), the same on every call and in every
// process, so that the ratio of two probes of one device is its change in speed.
#include "core/status.h"
#include "core/thread_pool.h"

namespace ll::profile {

// The mean seconds of `repetitions` (>= 1) runs of the workload on `pool`, timed as one span. Not thread-safe
// with other users of `pool`.
double probe_speed(ThreadPool& pool, int repetitions);

}  // namespace ll::profile
