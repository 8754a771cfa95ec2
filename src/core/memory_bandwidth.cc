#include "core/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>

namespace ll {
namespace {

// Eight independent accumulators so the loop is bound by loads, not by one add chain.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[0] += p[i];
  uint64_t s = 0;
  for (uint64_t a : acc) s += a;
  return s;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, int repetitions, size_t bytes) {
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);
  // Each thread touches its own share first, so pages land where that thread runs.
  pool.parallel_for(static_cast<int64_t>(words), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
  });
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < repetitions; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(words), [&](int64_t b, int64_t e) {
      sink.fetch_add(sum_words(buf.get() + b, static_cast<size_t>(e - b)), std::memory_order_relaxed);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(words * sizeof(uint64_t)) / s);
  }
  return sink.load() == 42 ? best * 1.0 : best;  // keeps the sums observable
}

}  // namespace ll
