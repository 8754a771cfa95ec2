#pragma once
// An Engine that counts on a StatusBoard what passes through another: the sequences generating
// now and the requests queued for a place, and the prompt and completion tokens served.
#include "server/engine.h"
#include "server/status_board.h"

namespace ll::server {

// `engine` and `board` must outlive it.
class MeteredEngine : public Engine {
 public:
  MeteredEngine(Engine& engine, StatusBoard& board) : engine_(engine), board_(board) {
    board_.set_parallel(engine_.parallel());
  }
  const text::Tokenizer& tokenizer() const override { return engine_.tokenizer(); }
  int64_t n_ctx() const override { return engine_.n_ctx(); }
  size_t parallel() const override { return engine_.parallel(); }
  EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) override {
    board_.sequence_started();
    EngineOutcome outcome = engine_.generate(job, on_text, stop);
    board_.sequence_ended(outcome.prompt_tokens, outcome.completion_tokens);
    return outcome;
  }

 private:
  Engine& engine_;
  StatusBoard& board_;
};

}  // namespace ll::server
