#include "server/local_engine.h"

#include "exec/generate.h"

namespace ll::server {

Result<std::unique_ptr<LocalEngine>> LocalEngine::create(const model::Model& model, const exec::ExecOptions& options) {
  auto tokenizer = text::Tokenizer::create(model.vocab());
  if (!tokenizer.ok()) return Status::Error(tokenizer.error());
  auto executor = std::make_unique<exec::SegmentExecutor>(model, model::all_units(model.hparams()), options);
  return std::unique_ptr<LocalEngine>(
      new LocalEngine(std::move(executor), std::make_unique<text::Tokenizer>(std::move(tokenizer).value())));
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
  auto result = exec::generate(*executor_, *tokenizer_, options, on_text);
  if (!result.ok()) return {Status::Error(result.error())};
  return {Status::Ok(), result->prompt_tokens.size(), result->tokens.size()};
}

}  // namespace ll::server
