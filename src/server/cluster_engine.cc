#include "server/cluster_engine.h"

#include <cstdio>

namespace ll::server {

ClusterEngine::ClusterEngine(cluster::Head& head, std::unique_ptr<text::Tokenizer> tokenizer, int64_t n_ctx,
                             std::atomic<bool>& cancel)
    : head_(head), tokenizer_(std::move(tokenizer)), n_ctx_(n_ctx), cancel_(cancel) {
  keep_alive_ = std::thread([this] { keep_alive_loop(); });
}

ClusterEngine::~ClusterEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  keep_alive_.join();
}

void ClusterEngine::keep_alive_loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, head_.keep_alive_interval(), [this] { return stopping_; })) {
    const Status alive = head_.keep_alive();
    if (!alive.ok()) std::fprintf(stderr, "warning: %s\n", alive.message().c_str());
  }
}

EngineOutcome ClusterEngine::generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) {
  std::lock_guard lock(mutex_);
  cluster::Request request;
  request.prompt_tokens = tokenizer_->encode(job.prompt, /*add_special=*/true, job.parse_special);
  if (request.prompt_tokens.empty()) request.prompt_tokens.push_back(tokenizer_->vocab().bos);
  request.n_predict = job.max_tokens;
  request.sampling = job.sampling;
  // The head looks at its cancel flag between steps; the caller's flag is set from on_text (a
  // stop string, a closed connection), so it is passed on there.
  cancel_.store(false);
  if (feed_ != nullptr) feed_->begin_run();
  auto gens = head_.generate({request}, [&](size_t, const std::string& text) {
    if (feed_ != nullptr) feed_->follow();
    on_text(text);
    if (stop.load()) cancel_.store(true);
  });
  cancel_.store(false);
  if (feed_ != nullptr) feed_->follow();
  cluster::Generation& g = gens.at(0);
  EngineOutcome outcome{g.status, g.prompt_tokens.size(), g.tokens.size()};
  if (stop.load()) outcome.status = Status::Ok();  // ended on purpose
  return outcome;
}

}  // namespace ll::server
