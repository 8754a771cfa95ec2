#include "core/thread_pool.h"

#include <sched.h>

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

// One waiter's spin-then-sleep, called once per look at an atomic that still holds `seen`.
// Every 64 spins it yields the core: when another process shares the cores (apps in the
// background of a phone), the thread we wait for may be the one preempted, and spinning on
// would keep it off the core for a whole time slice. With no one else runnable the yield
// returns at once.
class Backoff {
 public:
  template <typename T>
  void pause(const std::atomic<T>& value, T seen) {
    LL_CPU_RELAX();
    if (++spins_ % 64 != 0) return;
    sched_yield();
    if (std::chrono::steady_clock::now() > spin_until_) value.wait(seen, std::memory_order_acquire);
  }

 private:
  int spins_ = 0;
  std::chrono::steady_clock::time_point spin_until_ = std::chrono::steady_clock::now() + kSpinTime;
};
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
    Backoff backoff;
    uint32_t gen;
    while ((gen = generation_.load(std::memory_order_acquire)) == seen) backoff.pause(generation_, seen);
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
  Backoff backoff;
  int left;
  while ((left = pending_.load(std::memory_order_acquire)) != 0) backoff.pause(pending_, left);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  run([&](int ith, int nth) {
    int64_t begin = n * ith / nth;
    int64_t end = n * (ith + 1) / nth;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace ll
