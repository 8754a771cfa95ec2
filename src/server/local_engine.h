#pragma once
// A model on this device: every unit in one SegmentExecutor, one generation at a time; the
// others wait their turn in the order they came.
#include <condition_variable>
#include <memory>
#include <mutex>

#include "exec/segment_executor.h"
#include "model/model.h"
#include "server/engine.h"
#include "server/status_board.h"

namespace ll::server {

// `model` must outlive the engine.
class LocalEngine : public Engine {
 public:
  static Result<std::unique_ptr<LocalEngine>> create(const model::Model& model, const exec::ExecOptions& options);
  const text::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int64_t n_ctx() const override { return executor_->n_ctx(); }
  size_t parallel() const override { return 1; }
  EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) override;
  // Shows this process on `board` as one device holding every unit, and each token's compute
  // time; `board` must outlive the engine. Call before the first generate().
  void report_to(StatusBoard& board);

 private:
  LocalEngine(const model::Model& model, const exec::ExecOptions& options,
              std::unique_ptr<exec::SegmentExecutor> executor, std::unique_ptr<text::Tokenizer> tokenizer)
      : model_(model), options_(options), executor_(std::move(executor)), tokenizer_(std::move(tokenizer)) {}
  EngineOutcome run(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop);
  const model::Model& model_;
  const exec::ExecOptions options_;
  std::unique_ptr<exec::SegmentExecutor> executor_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  StatusBoard* board_ = nullptr;
  // A ticket queue: generate() takes the next ticket and runs when it is served.
  std::mutex mutex_;
  std::condition_variable turn_;
  uint64_t next_ticket_ = 0, serving_ = 0;
};

}  // namespace ll::server
