#pragma once
// Perplexity over a text, by llama.cpp's `llama-perplexity` procedure so that the figures can be
// compared with its: the text's tokens (BOS first when the vocabulary adds one) are cut into
// chunks of n_ctx tokens; each chunk starts afresh with its first token replaced by BOS (when the
// vocabulary adds one); only the second half of each chunk is scored (positions n_ctx/2 ..
// n_ctx-2 predicting the next token); the figure is exp(mean negative log-likelihood) and its
// error exp(mean) * stddev(NLL) / sqrt(count - 1).
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "core/status.h"
#include "exec/score.h"
#include "exec/segment_executor.h"

namespace ll::exec {

struct PerplexityOptions {
  int64_t n_ctx = 512;    // tokens per chunk
  int64_t n_batch = 2048; // tokens per forward pass; n_batch / n_ctx chunks are scored at once
};

// Chunks scored together (chunks_per_pass of them), each the chunk's tokens; the
// answer holds, per chunk, the log-probability of each next token (n_ctx - 1 values).
using ScoreChunks = ScoreSequences;

struct PerplexityResult {
  int64_t n_tokens = 0;              // of the whole text
  std::vector<double> running;       // exp(mean NLL) after each chunk
  int64_t scored = 0;                // tokens scored
  double ppl = 0, ppl_error = 0;     // the final estimate and its standard error
};

// Tokens per chunk from -c: at least 3 (so that a chunk scores a token), at most max_ctx.
Status validate_perplexity_context(int64_t n_ctx, int64_t max_ctx);
// Whether a text of n_tokens tokens holds the 2 * n_ctx that perplexity() needs (checked before
// setting up what scores it).
Status check_perplexity_tokens(int64_t n_tokens, int64_t n_ctx);
// The chunks to score at once for n_batch (n_batch / n_ctx, at least one, at most 64).
int64_t chunks_per_pass(const PerplexityOptions& options);

// On one device (an executor of the whole model): each chunk from position 0 of a fresh
// sequence, in forward passes of at most n_batch tokens. `executor` must outlive the scorer.
ScoreChunks score_on_device(SegmentExecutor& executor, int64_t n_batch);

// `bos`: the token that starts every chunk, when the vocabulary adds one. `on_chunk(k, ppl)`
// reports the running figure after chunk k (from 1).
Result<PerplexityResult> perplexity(std::span<const int32_t> tokens, std::optional<int32_t> bos,
                                    const PerplexityOptions& options, const ScoreChunks& score,
                                    const std::function<void(size_t, double)>& on_chunk = {});

}  // namespace ll::exec
