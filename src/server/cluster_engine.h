#pragma once
// A model on a cluster: the head of a loaded pipeline. Between requests a thread keeps the head's
// session alive on the workers (they free a session that stays silent past their lease).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "cluster/head.h"
#include "server/engine.h"
#include "server/head_status_feed.h"

namespace ll::server {

// `head` must outlive the engine, and `cancel` must be the flag the head was connected with
// (HeadOptions::cancel): setting it ends a generation early.
class ClusterEngine : public Engine {
 public:
  ClusterEngine(cluster::Head& head, std::unique_ptr<text::Tokenizer> tokenizer, int64_t n_ctx,
                std::atomic<bool>& cancel);
  ~ClusterEngine() override;
  const text::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int64_t n_ctx() const override { return n_ctx_; }
  EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) override;
  // Passes what the head records while it generates to `feed` (built on the same head), which
  // must outlive the engine. Call before the first generate().
  void report_to(HeadStatusFeed& feed) { feed_ = &feed; }

 private:
  void keep_alive_loop();

  cluster::Head& head_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  const int64_t n_ctx_;
  std::atomic<bool>& cancel_;
  std::mutex mutex_;  // the head is not thread-safe: a generation or a keep-alive at a time
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread keep_alive_;
  HeadStatusFeed* feed_ = nullptr;
};

}  // namespace ll::server
