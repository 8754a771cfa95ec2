// Speed of matmul against the machine's memory read bandwidth. Built with -DLL_BUILD_TOOLS=ON:
//   tools/bootstrap.sh build -DLL_BUILD_TOOLS=ON && build/matvec_speed [q4_0 ...] [decode] [threads=N] [packed]
// Weights rotate through enough copies to exceed the last-level cache, so n = 1 streams
// them from DRAM as decoding a real model does; "hot" repeats one matrix (cache resident).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/thread_pool.h"
#include "hwy/aligned_allocator.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Sum of words [b, e) with four independent accumulators (AVX2 where the CPU has it, so
// that the loop itself is never the bottleneck).
#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t sum_words_avx2(const uint64_t* p, size_t b, size_t e) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = b;
  for (; i + 16 <= e; i += 16) {
    a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

uint64_t sum_words(const uint64_t* p, size_t b, size_t e) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return sum_words_avx2(p, b, e);
#endif
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = b; i + 4 <= e; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// Read bandwidth of a sum over `words` split across the pool (one timed pass).
double stream_once(ll::ThreadPool& pool, const uint64_t* buf, size_t words) {
  std::vector<uint64_t> sink(pool.size());
  const auto t0 = Clock::now();
  pool.run([&](int ith, int nth) { sink[ith] = sum_words(buf, words * ith / nth, words * (ith + 1) / nth); });
  const double s = seconds_since(t0);
  volatile uint64_t keep = sink[0];
  (void)keep;
  return words * 8 / s / 1e9;
}

// The machine is shared, so memory bandwidth and kernel times are sampled in alternation
// and the best sample of each is kept: both then describe the quietest moments. Samples
// read 64 MiB slices of a 1 GiB buffer, twice the last-level cache.
struct Bandwidth {
  static constexpr size_t kSlice = (size_t{64} << 20) / 8;
  static constexpr int kSlices = 16;
  hwy::AlignedFreeUniquePtr<uint64_t[]> buf = hwy::AllocateAligned<uint64_t>(kSlice * kSlices);
  int next = 0;
  Bandwidth() { std::memset(buf.get(), 1, kSlice * kSlices * 8); }
  double sample(ll::ThreadPool& pool) { return stream_once(pool, buf.get() + kSlice * (next++ % kSlices), kSlice); }
};

struct Shape {
  int64_t rows, cols;
};

void bench(ll::DType t, Shape s, int64_t n, ll::ThreadPool& pool, Bandwidth& bw, bool hot, int rounds, bool packed) {
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
  const auto layout = packed ? ll::kernels::WeightLayout::kRowLanes : ll::kernels::WeightLayout::kFile;
  if (packed) {
    for (auto& copy : w) ll::kernels::pack_row_lanes(t, copy.get(), s.rows, s.cols);
  }
  std::vector<float> x(n * s.cols), y(n * s.rows);
  for (float& v : x) v = dist(rng) * 50;
  for (int c = 0; c < copies; ++c) ll::kernels::matmul(t, w[c].get(), s.rows, s.cols, x.data(), n, y.data(), &pool, layout);
  double best_call = 1e9, best_bw = 0;
  int call = 0;
  for (int round = 0; round < rounds; ++round) {
    best_bw = std::max(best_bw, bw.sample(pool));
    const auto t_round = Clock::now();
    do {
      const auto t0 = Clock::now();
      ll::kernels::matmul(t, w[call++ % copies].get(), s.rows, s.cols, x.data(), n, y.data(), &pool, layout);
      best_call = std::min(best_call, seconds_since(t0));
    } while (seconds_since(t_round) < 0.01);
  }
  const double gbps = matrix_bytes / best_call / 1e9;
  std::printf("%-5s%s %6lld x %5lld  n=%-3lld %d thr %s  %8.1f us/call  %6.1f GB/s weights (%3.0f%% of %4.1f)  %6.1f GOP/s  %7.1f us/token\n",
              std::string(ll::dtype_name(t)).c_str(), packed ? "p" : " ", static_cast<long long>(s.rows), static_cast<long long>(s.cols),
              static_cast<long long>(n), pool.size(), hot ? "hot " : "dram", best_call * 1e6, gbps,
              100 * gbps / best_bw, best_bw, 2.0 * s.rows * s.cols * n / best_call / 1e9, best_call * 1e6 / n);
}

}  // namespace

int main(int argc, char** argv) {
  // Arguments: optional type names (default: all), "full" for more shapes, "decode" for n = 1
  // only, "threads=N" for one thread count, "rounds=N" for more samples (on a busy machine
  // the best ones come from its quiet moments), "packed" to repack the weights where this
  // machine's kernels have a packed layout (as --no-mmap loading does; marked "p").
  bool full = false;
  bool packed = false;
  bool decode_only = false;
  int rounds = 40;
  std::vector<int> thread_counts = {1, 2};
  std::vector<ll::DType> types;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "full") == 0) {
      full = true;
    } else if (std::strncmp(argv[i], "rounds=", 7) == 0) {
      rounds = std::atoi(argv[i] + 7);
    } else if (std::strncmp(argv[i], "threads=", 8) == 0) {
      thread_counts = {std::atoi(argv[i] + 8)};
    } else if (std::strcmp(argv[i], "packed") == 0) {
      packed = true;
    } else if (std::strcmp(argv[i], "decode") == 0) {
      decode_only = true;
    } else if (auto t = ll::dtype_from_name(argv[i])) {
      types.push_back(*t);
    }
  }
  if (types.empty()) types = {ll::DType::Q4_0, ll::DType::Q8_0, ll::DType::Q4_K, ll::DType::Q6_K, ll::DType::F16};
  std::printf("SIMD target: %s\n", ll::kernels::simd_target_name());
  Bandwidth bw;
  const Shape shapes[] = {{5632, 2048}, {32000, 2048}, {2048, 5632}};
  for (int threads : thread_counts) {
    ll::ThreadPool pool(threads);
    for (ll::DType t : types) {
      const bool pack = packed && ll::kernels::packs_row_lanes(t);
      for (const Shape& s : shapes) {
        bench(t, s, 1, pool, bw, false, rounds, pack);
        if (!full) break;
      }
      if (full) bench(t, shapes[0], 1, pool, bw, true, rounds, pack);
      if (!decode_only) bench(t, shapes[0], 64, pool, bw, false, rounds, pack);
    }
  }
}
