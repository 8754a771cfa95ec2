#include "exec/score.h"

#include <algorithm>
#include <cmath>

namespace ll::exec {

double next_token_log_prob(std::span<const float> logits, int32_t next) {
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum_exp = 0.0;
  for (float l : logits) sum_exp += std::exp(l - max_logit);
  return logits[static_cast<size_t>(next)] - max_logit - std::log(sum_exp);
}

Result<std::vector<float>> score_tokens(SegmentExecutor& executor, SeqId seq, int64_t pos,
                                        std::span<const int32_t> tokens, float* hidden, int64_t n_batch) {
  if (!executor.has_head()) return Status::Error("scoring needs the segment that holds the model's head");
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = executor.n_vocab(), n_embd = executor.n_embd();
  const int64_t batch = std::max<int64_t>(1, n_batch);
  std::vector<float> log_probs;
  log_probs.reserve(static_cast<size_t>(std::max<int64_t>(0, n - 1)));
  std::vector<float> logits(static_cast<size_t>(std::min(batch, n) * n_vocab));
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t m = std::min(batch, n - i);
    LL_RETURN_IF_ERROR(executor.forward(seq, pos + i, tokens.subspan(static_cast<size_t>(i), static_cast<size_t>(m)),
                                        hidden + i * n_embd, m, logits.data(), /*all_logits=*/true));
    for (int64_t r = 0; r < m && i + r + 1 < n; ++r) {
      const std::span<const float> row(logits.data() + r * n_vocab, static_cast<size_t>(n_vocab));
      log_probs.push_back(static_cast<float>(next_token_log_prob(row, tokens[static_cast<size_t>(i + r + 1)])));
    }
  }
  return log_probs;
}

}  // namespace ll::exec
