#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#define LL_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define LL_CPU_RELAX() asm volatile("yield")
#else
#define LL_CPU_RELAX() ((void)0)
#endif

namespace ll {

int default_thread_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }
namespace {
// Spin this long before sleeping: a decode step issues jobs back to back, microseconds apart.
constexpr auto kSpinTime = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int ith) {
  uint32_t seen = 0;
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    uint32_t gen;
    int spins = 0;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) {
      LL_CPU_RELAX();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = gen;
    if (stop_.load()) return;
    (*job_)(ith, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  fn(0, n_threads_);
  auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
  int spins = 0;
  int left;
  while ((left = pending_.load(std::memory_order_acquire)) != 0) {
    LL_CPU_RELAX();
    if (++spins % 64 == 0 && std::chrono::steady_clock::now() > spin_until) pending_.wait(left);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  run([&](int ith, int nth) {
    int64_t begin = n * ith / nth;
    int64_t end = n * (ith + 1) / nth;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace ll
