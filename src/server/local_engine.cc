#include "server/local_engine.h"

#include <chrono>

#include "core/system_memory.h"
#include "exec/generate.h"
#include "server/segment_memory.h"

namespace ll::server {

Result<std::unique_ptr<LocalEngine>> LocalEngine::create(const model::Model& model, const exec::ExecOptions& options) {
  auto tokenizer = text::Tokenizer::create(model.vocab());
  if (!tokenizer.ok()) return Status::Error(tokenizer.error());
  auto executor = std::make_unique<exec::SegmentExecutor>(model, model::all_units(model.hparams()), options);
  return std::unique_ptr<LocalEngine>(new LocalEngine(model, options, std::move(executor),
                                                      std::make_unique<text::Tokenizer>(std::move(tokenizer).value())));
}

void LocalEngine::report_to(StatusBoard& board) {
  board_ = &board;
  const model::UnitRange all = model::all_units(model_.hparams());
  DeviceStatus d;
  d.name = "this process";
  d.address = "local";
  d.units = model::describe_units(model_.hparams(), all);
  d.unit_count = all.end - all.begin;
  d.threads = static_cast<uint32_t>(options_.n_threads);
  // What it may use: the memory still free to it and what it already holds (the mapped model).
  d.memory_limit_bytes = usable_memory_bytes() + resident_bytes();
  d.memory_used_bytes = segment_memory_bytes(graph::build_graph(model_, options_.kv_types), all, options_.n_ctx);
  board.set_devices({std::move(d)});
}

EngineOutcome LocalEngine::generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) {
  std::unique_lock lock(mutex_);
  const uint64_t ticket = next_ticket_++;
  turn_.wait(lock, [&] { return serving_ == ticket; });
  lock.unlock();
  EngineOutcome outcome = run(job, on_text, stop);
  lock.lock();
  ++serving_;
  turn_.notify_all();
  return outcome;
}

EngineOutcome LocalEngine::run(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) {
  exec::GenerateOptions options;
  options.prompt = job.prompt;
  options.parse_special = job.parse_special;
  options.n_predict = job.max_tokens;
  options.sampling = job.sampling;
  options.stop = &stop;
  if (board_ != nullptr) {
    // Row k of logits comes from the forward pass of the k-th generated token: the time since
    // row k-1 is that token's compute (row 0 ends the prompt, which is no token's).
    options.on_logits = [this, last = std::chrono::steady_clock::time_point{}](int64_t row,
                                                                            std::span<const float>) mutable {
      const auto now = std::chrono::steady_clock::now();
      if (row > 0) board_->token({{0, std::chrono::duration<double>(now - last).count(), 0, 0}}, now);
      last = now;
      return Status::Ok();
    };
  }
  auto result = exec::generate(*executor_, *tokenizer_, options, on_text);
  if (!result.ok()) return {Status::Error(result.error())};
  return {Status::Ok(), result->prompt_tokens.size(), result->tokens.size()};
}

}  // namespace ll::server
