// Speed of matmul against the machine's memory read bandwidth. Not built by CMake:
//   g++ -std=c++20 -O3 -DNDEBUG -Isrc tools/matvec_speed.cc src/kernels/*.cc src/core/dtype.cc \
//       src/core/thread_pool.cc -lhwy -pthread -o /tmp/matvec_speed && /tmp/matvec_speed
// Weights rotate through enough copies to exceed the last-level cache, so n = 1 streams
// them from DRAM as decoding a real model does; "hot" repeats one matrix (cache resident).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Best of several passes of a read-only sum over a 1 GiB buffer split across the pool.
double memory_bandwidth(ll::ThreadPool& pool) {
  const size_t bytes = size_t{1} << 30;
  auto buf = hwy::AllocateAligned<uint64_t>(bytes / 8);
  std::memset(buf.get(), 1, bytes);
  std::vector<uint64_t> sink(pool.size());
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
    pool.parallel_for(static_cast<int64_t>(bytes / 8), [&](int64_t b, int64_t e) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int64_t i = b; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      sink[b * pool.size() / (bytes / 8)] = s0 + s1 + s2 + s3;
    });
    best = std::max(best, bytes / seconds_since(t0) / 1e9);
  }
  return best;
}

struct Shape {
  int64_t rows, cols;
};

void bench(ll::DType t, Shape s, int64_t n, ll::ThreadPool& pool, bool hot) {
  const int64_t matrix_bytes = ll::row_bytes(t, s.cols) * s.rows;
  const int copies = hot ? 1 : static_cast<int>(std::max<int64_t>(2, (512ll << 20) / matrix_bytes));
  std::vector<hwy::AlignedFreeUniquePtr<uint8_t[]>> w;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0, 0.02f);
  std::vector<float> row(s.cols);
  for (int c = 0; c < copies; ++c) {
    w.push_back(hwy::AllocateAligned<uint8_t>(matrix_bytes));
    if (c == 0) {
      for (int64_t r = 0; r < s.rows; ++r) {
        for (float& v : row) v = dist(rng);
        ll::kernels::quantize_row(t, row.data(), w[0].get() + r * ll::row_bytes(t, s.cols), s.cols);
      }
    } else {
      std::memcpy(w[c].get(), w[0].get(), matrix_bytes);
    }
  }
  std::vector<float> x(n * s.cols), y(n * s.rows);
  for (float& v : x) v = dist(rng) * 50;
  // Warm up, then time enough calls for ~0.5 s.
  for (int c = 0; c < copies; ++c) ll::kernels::matmul(t, w[c].get(), s.rows, s.cols, x.data(), n, y.data(), &pool);
  int iters = 0;
  const auto t0 = Clock::now();
  double elapsed = 0;
  while (elapsed < 0.5 || iters < copies) {
    ll::kernels::matmul(t, w[iters % copies].get(), s.rows, s.cols, x.data(), n, y.data(), &pool);
    ++iters;
    elapsed = seconds_since(t0);
  }
  const double per_call = elapsed / iters;
  std::printf("%-5s %6lld x %5lld  n=%-3lld %d thr %s  %8.1f us/call  %6.1f GB/s weights  %7.1f GOP/s  %7.1f us/token\n",
              std::string(ll::dtype_name(t)).c_str(), static_cast<long long>(s.rows), static_cast<long long>(s.cols),
              static_cast<long long>(n), pool.size(), hot ? "hot " : "dram", per_call * 1e6,
              matrix_bytes / per_call / 1e9, 2.0 * s.rows * s.cols * n / per_call / 1e9, per_call * 1e6 / n);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "quick") == 0;
  std::printf("SIMD target: %s\n", ll::kernels::simd_target_name());
  for (int threads : {1, 2}) {
    ll::ThreadPool pool(threads);
    std::printf("memory read bandwidth, %d thread(s): %.1f GB/s\n", threads, memory_bandwidth(pool));
  }
  const ll::DType types[] = {ll::DType::Q4_0, ll::DType::Q8_0, ll::DType::Q4_K, ll::DType::Q6_K, ll::DType::F16};
  const Shape shapes[] = {{5632, 2048}, {32000, 2048}, {2048, 5632}};
  for (int threads : {1, 2}) {
    ll::ThreadPool pool(threads);
    for (ll::DType t : types) {
      for (const Shape& s : shapes) {
        bench(t, s, 1, pool, false);
        if (quick) break;
      }
      if (!quick) bench(t, shapes[0], 1, pool, true);
      bench(t, shapes[0], 64, pool, false);
    }
  }
}
