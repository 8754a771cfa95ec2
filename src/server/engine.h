#pragma once
// What the HTTP API needs from a model: generations, each streaming its text. A model on this
// device (LocalEngine) or on a cluster of workers (ClusterEngine).
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "text/sampler.h"
#include "text/tokenizer.h"

namespace ll::server {

struct EngineJob {
  std::string prompt;
  bool parse_special = false;  // a rendered chat template: its markers are control tokens
  int64_t max_tokens = 16;     // -1: until EOS or a full context
  text::SamplerParams sampling;
};

struct EngineOutcome {
  Status status;
  size_t prompt_tokens = 0;
  size_t completion_tokens = 0;
};

// Threading: every method may be called from any thread, generate() by many at once: up to
// parallel() generations run together, the others wait in the order they came.
class Engine {
 public:
  using OnText = std::function<void(const std::string&)>;
  virtual ~Engine() = default;
  virtual const text::Tokenizer& tokenizer() const = 0;
  virtual int64_t n_ctx() const = 0;
  // How many generations run at once.
  virtual size_t parallel() const = 0;
  // Runs the job, streaming its text through on_text. Once `stop` is set (a stop string was
  // reached, the client went away) the generation ends soon after, with the outcome so far.
  virtual EngineOutcome generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) = 0;
};

}  // namespace ll::server
