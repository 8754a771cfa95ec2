#pragma once
// A fixed pool of threads created once. Between jobs the workers spin briefly, yielding
// the core now and then, and then sleep on a futex (std::atomic::wait), so an idle pool
// burns no core.
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace ll {

// The most threads a pool may have (llama.cpp's GGML_MAX_N_THREADS): more is a typo, not a machine.
inline constexpr int kMaxThreads = 512;
// The thread count when none is given: every hardware thread.
int default_thread_count();
// `requested` threads, or default_thread_count() when it is 0 (not given).
inline int thread_count_or_default(int requested) { return requested > 0 ? requested : default_thread_count(); }

// Driven by one thread at a time (its owner); its worker threads belong to it alone.
class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(2) starts one extra thread.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(ith, nth) once on every thread (ith = 0 is the caller) and waits for all.
  // Not thread-safe and not reentrant: one caller at a time, and fn must not call run or
  // parallel_for of this pool (a kernel called from fn gets no pool or another one).
  void run(const std::function<void(int ith, int nth)>& fn);
  // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end).
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void worker_loop(int ith);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace ll
