#pragma once
// Text generation on one device: tokenize, process the prompt in batches, then decode and
// sample token by token, streaming text through a callback.
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "exec/segment_executor.h"
#include "text/sampler.h"
#include "text/tokenizer.h"

namespace ll::exec {

// n_predict as in llama.cpp: N >= 0 tokens at most, -1 until EOS or the end of the context, -2
// until the context is full. The two are the same here: the context is never shifted, and EOS
// (or BOS) always ends a generation.
Status validate_n_predict(int64_t n_predict);
// Whether `generated` tokens are all that n_predict asks for.
inline bool predicted_all(int64_t generated, int64_t n_predict) { return n_predict >= 0 && generated >= n_predict; }

struct GenerateOptions {
  std::string prompt;
  bool parse_special = false;  // control tokens spelled in the prompt (a rendered chat template) are tokens
  // See validate_n_predict; generation also ends at Tokenizer::ends_generation or a full context.
  int64_t n_predict = 128;
  int64_t n_batch = 512;    // prompt tokens per forward pass
  text::SamplerParams sampling;
  // Each row of logits before a token is sampled from it: row 0 at the last prompt position,
  // row k after the k-th generated token.
  std::function<Status(int64_t row, std::span<const float> logits)> on_logits;
  // When given and set (e.g. by on_text on a stop string, or by a client that went away), the
  // generation ends after the token whose text was just delivered.
  const std::atomic<bool>* stop = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated
  double prompt_seconds = 0;
  double generate_seconds = 0;  // from the first sampled token's forward pass to the end
};

// `on_text` receives decoded text as soon as it forms complete UTF-8.
Result<GenerateResult> generate(SegmentExecutor& executor, const text::Tokenizer& tokenizer,
                                const GenerateOptions& options, const std::function<void(const std::string&)>& on_text);

}  // namespace ll::exec
