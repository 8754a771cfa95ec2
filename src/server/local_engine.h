#pragma once
// A model on this device: every unit in one SegmentExecutor, one generation at a time; the
// others wait their turn in the order they came.
#include <condition_variable>
#include <memory>
#include <mutex>

#include "exec/segment_executor.h"
#include "model/model.h"
#include "server/engine.h"

namespace ll::server {

// `model` must outlive the engine.
class LocalEngine : public Engine {
 public:
  static Result<std::unique_ptr<LocalEngine>> create(const model::Model& model, const exec::ExecOptions& options);
  const text::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int64_t n_ctx() const override { return executor_->n_ctx(); }
  size_t parallel() const override { return 1; }
  EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) override;

 private:
  LocalEngine(std::unique_ptr<exec::SegmentExecutor> executor, std::unique_ptr<text::Tokenizer> tokenizer)
      : executor_(std::move(executor)), tokenizer_(std::move(tokenizer)) {}
  EngineOutcome run(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop);
  std::unique_ptr<exec::SegmentExecutor> executor_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  // A ticket queue: generate() takes the next ticket and runs when it is served.
  std::mutex mutex_;
  std::condition_variable turn_;
  uint64_t next_ticket_ = 0, serving_ = 0;
};

}  // namespace ll::server
