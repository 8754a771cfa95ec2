#pragma once
// Scoring a token sequence: the log-probability the model gives each next token, computed as
// llama.cpp's perplexity tool computes it, so that the figures can be held against it.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "exec/segment_executor.h"

namespace ll::exec {

// log softmax(logits)[next]: the maximum logit in float, the sum of expf(logit - max) in double.
double next_token_log_prob(std::span<const float> logits, int32_t next);

// Runs `tokens` as positions [pos, pos + n) of `seq` on an executor that holds the head, in
// forward passes of at most `n_batch` tokens, and returns the log-probability of each next
// token (n - 1 values: position i predicts tokens[i + 1]). `hidden` holds n x n_embd floats:
// the input when the executor has no embedding, scratch otherwise. The sequence must exist.
Result<std::vector<float>> score_tokens(SegmentExecutor& executor, SeqId seq, int64_t pos,
                                        std::span<const int32_t> tokens, float* hidden, int64_t n_batch);

// Scores several token sequences (on one device or through a cluster's head): per sequence, the
// log-probability of each next token (size - 1 values), in the given order.
using ScoreSequences =
    std::function<Result<std::vector<std::vector<float>>>(const std::vector<std::vector<int32_t>>& sequences)>;

// On one device (an executor of the whole model): the sequences' common prefix in one pass, then
// each sequence's remaining tokens after it (the KV cache rewound to the prefix), in forward passes
// of at most n_batch tokens. Sequences that continue one prompt (classification labels) cost the
// prompt once. `executor` must outlive the scorer; it uses sequence 0.
ScoreSequences score_sharing_prefix(SegmentExecutor& executor, int64_t n_batch);

}  // namespace ll::exec
