#pragma once
// Measures the machine's memory read bandwidth: the ceiling for decoding, which streams
// every weight once per token.
#include <cstddef>

#include "core/thread_pool.h"

namespace ll {

// Best of `repetitions` timed passes in which every thread of `pool` reads its share of a
// `bytes`-sized buffer (far larger than the caches). Returns bytes per second.
double measure_read_bandwidth(ThreadPool& pool, int repetitions = 5, size_t bytes = size_t{1} << 30);

}  // namespace ll
