#pragma once
// A model on a cluster: the head of a loaded pipeline, driven by one thread of its own. Each
// generate() hands its job to that thread and streams the job's text back on the caller's
// thread. The driver keeps one open run (cluster::Head::open_run) while there is work: a job
// joins it as a new sequence as soon as fewer than `parallel` generate, without waiting for the
// others to end, and a job whose caller sets its stop flag is cancelled alone (its sequence freed
// on every worker). Between runs the driver keeps the head's session alive on the workers (they
// free a session that stays silent past their lease).
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cluster/head.h"
#include "server/engine.h"
#include "server/head_status_feed.h"

namespace ll::server {

// `head` must outlive the engine; only the engine's thread uses it.
class ClusterEngine : public Engine {
 public:
  ClusterEngine(cluster::Head& head, std::unique_ptr<text::Tokenizer> tokenizer, int64_t n_ctx, size_t parallel);
  ~ClusterEngine() override;
  const text::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int64_t n_ctx() const override { return n_ctx_; }
  size_t parallel() const override { return parallel_; }
  EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) override;
  // Passes what the head records while it generates (each token's stage times, rebalances,
  // recoveries) to `feed` (built on the same head), which must outlive the engine. Call before
  // the first generate().
  void report_to(HeadStatusFeed& feed) { feed_.store(&feed); }

 private:
  struct Job;
  void drive();
  // Runs the jobs that wait, and those that come while it runs, until none is left.
  void run_jobs();
  // Moves waiting jobs into the run while fewer than parallel_ generate.
  void admit_waiting(cluster::GenerationRun& run, std::map<size_t, std::shared_ptr<Job>>& running);

  cluster::Head& head_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  const int64_t n_ctx_;
  const size_t parallel_;
  std::mutex mutex_;  // guards waiting_ and stopping_
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> waiting_;
  bool stopping_ = false;
  std::thread driver_;
  std::atomic<HeadStatusFeed*> feed_{nullptr};
};

}  // namespace ll::server
