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

ScoreSequences score_sharing_prefix(SegmentExecutor& executor, int64_t n_batch) {
  return [&executor, n_batch](const std::vector<std::vector<int32_t>>& sequences)
             -> Result<std::vector<std::vector<float>>> {
    if (sequences.empty()) return std::vector<std::vector<float>>{};
    if (!executor.has_head()) return Status::Error("scoring needs the segment that holds the model's head");
    const int64_t n_vocab = executor.n_vocab(), n_embd = executor.n_embd();
    size_t prefix = sequences[0].size();
    for (const auto& s : sequences) {
      if (s.empty()) return Status::Error("a sequence to score has no tokens");
      if (static_cast<int64_t>(s.size()) > executor.n_ctx()) {
        return Status::Errorf("a sequence to score has {} tokens but the context holds {}; use a larger -c", s.size(),
                              executor.n_ctx());
      }
      for (int32_t t : s) {
        if (t < 0 || t >= n_vocab) return Status::Errorf("token {} is outside the vocabulary of {}", t, n_vocab);
      }
      prefix = std::min(prefix, s.size());
      for (size_t i = 0; i < prefix; ++i) {
        if (s[i] != sequences[0][i]) { prefix = i; break; }
      }
    }
    const int64_t batch = std::max<int64_t>(1, n_batch);
    std::vector<float> hidden(static_cast<size_t>(batch * n_embd)), logits(static_cast<size_t>(batch * n_vocab));
    // Runs tokens[from, end) at their positions, appending the log-probability of each next token;
    // the logits at the last position go to `last_row`.
    auto run = [&](std::span<const int32_t> tokens, int64_t from, std::vector<float>& log_probs,
                   std::vector<float>& last_row) -> Status {
      const int64_t n = static_cast<int64_t>(tokens.size());
      for (int64_t i = from; i < n; i += batch) {
        const int64_t m = std::min(batch, n - i);
        LL_RETURN_IF_ERROR(executor.forward(0, i, tokens.subspan(static_cast<size_t>(i), static_cast<size_t>(m)),
                                            hidden.data(), m, logits.data(), /*all_logits=*/true));
        for (int64_t r = 0; r < m; ++r) {
          const std::span<const float> row(logits.data() + r * n_vocab, static_cast<size_t>(n_vocab));
          if (i + r + 1 < n) {
            log_probs.push_back(static_cast<float>(next_token_log_prob(row, tokens[static_cast<size_t>(i + r + 1)])));
          } else {
            last_row.assign(row.begin(), row.end());
          }
        }
      }
      return Status::Ok();
    };
    executor.free_sequence(0);
    LL_RETURN_IF_ERROR(executor.create_sequence(0));
    std::vector<float> prefix_log_probs, prefix_last_row, unused_row;
    const std::span<const int32_t> first(sequences[0]);
    Status status = run(first.first(prefix), 0, prefix_log_probs, prefix_last_row);
    std::vector<std::vector<float>> out;
    for (size_t k = 0; k < sequences.size() && status.ok(); ++k) {
      const std::vector<int32_t>& s = sequences[k];
      std::vector<float> log_probs = prefix_log_probs;
      if (s.size() > prefix) {
        if (prefix > 0) log_probs.push_back(static_cast<float>(next_token_log_prob(prefix_last_row, s[prefix])));
        status = run(s, static_cast<int64_t>(prefix), log_probs, unused_row);
      }
      out.push_back(std::move(log_probs));
    }
    executor.free_sequence(0);
    if (!status.ok()) return status;
    return out;
  };
}

}  // namespace ll::exec
