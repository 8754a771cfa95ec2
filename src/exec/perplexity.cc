#include "exec/perplexity.h"

#include <algorithm>
#include <cmath>

#include "exec/score.h"

namespace ll::exec {

Status validate_perplexity_context(int64_t n_ctx, int64_t max_ctx) {
  if (n_ctx < 3 || n_ctx > max_ctx) {
    return Status::Errorf("a context of {} tokens cannot be scored: -c must be 3..{} (the second half of each chunk "
                          "is scored, given the first)",
                          n_ctx, max_ctx);
  }
  return Status::Ok();
}

Status check_perplexity_tokens(int64_t n_tokens, int64_t n_ctx) {
  if (n_tokens < 2 * n_ctx) {
    return Status::Errorf("the text tokenizes to only {} tokens, but a context of {} needs at least 2*{} = {} tokens; "
                          "give a longer text or a smaller -c",
                          n_tokens, n_ctx, n_ctx, 2 * n_ctx);
  }
  return Status::Ok();
}

int64_t chunks_per_pass(const PerplexityOptions& options) {
  // A bound on the sequences a pass holds at once (and a cluster's session allows); the figures
  // do not depend on it.
  constexpr int64_t kMaxChunksPerPass = 64;
  return std::clamp<int64_t>(options.n_batch / options.n_ctx, 1, kMaxChunksPerPass);
}

ScoreChunks score_on_device(SegmentExecutor& executor, int64_t n_batch) {
  return [&executor, n_batch](const std::vector<std::vector<int32_t>>& chunks)
             -> Result<std::vector<std::vector<float>>> {
    constexpr SeqId kSeq = 0;
    std::vector<std::vector<float>> out;
    for (const std::vector<int32_t>& chunk : chunks) {
      executor.free_sequence(kSeq);
      LL_RETURN_IF_ERROR(executor.create_sequence(kSeq));
      std::vector<float> hidden(chunk.size() * static_cast<size_t>(executor.n_embd()));
      LL_ASSIGN_OR_RETURN(std::vector<float> scored, score_tokens(executor, kSeq, 0, chunk, hidden.data(), n_batch));
      out.push_back(std::move(scored));
    }
    executor.free_sequence(kSeq);
    return out;
  };
}

Result<PerplexityResult> perplexity(std::span<const int32_t> tokens, std::optional<int32_t> bos,
                                    const PerplexityOptions& options, const ScoreChunks& score,
                                    const std::function<void(size_t, double)>& on_chunk) {
  const int64_t n_ctx = options.n_ctx;
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_ctx < 3) return validate_perplexity_context(n_ctx, n_ctx);
  LL_RETURN_IF_ERROR(check_perplexity_tokens(n_tokens, n_ctx));
  const int64_t n_chunks = n_tokens / n_ctx;
  const int64_t per_pass = chunks_per_pass(options);
  const int64_t first = n_ctx / 2;

  PerplexityResult r;
  r.n_tokens = n_tokens;
  double nll = 0, nll2 = 0;
  for (int64_t c = 0; c < n_chunks; c += per_pass) {
    std::vector<std::vector<int32_t>> chunks;
    for (int64_t k = c; k < std::min(n_chunks, c + per_pass); ++k) {
      const auto begin = tokens.begin() + k * n_ctx;
      chunks.emplace_back(begin, begin + n_ctx);
      if (bos) chunks.back()[0] = *bos;
    }
    LL_ASSIGN_OR_RETURN(const std::vector<std::vector<float>> log_probs, score(chunks));
    if (log_probs.size() != chunks.size()) {
      return Status::Errorf("scored {} chunks of {}", log_probs.size(), chunks.size());
    }
    for (const std::vector<float>& chunk : log_probs) {
      if (static_cast<int64_t>(chunk.size()) != n_ctx - 1) {
        return Status::Errorf("a chunk of {} tokens came back with {} scores instead of {}", n_ctx, chunk.size(),
                              n_ctx - 1);
      }
      for (int64_t i = first; i < n_ctx - 1; ++i) {
        const double v = -static_cast<double>(chunk[static_cast<size_t>(i)]);
        nll += v;
        nll2 += v * v;
      }
      r.scored += n_ctx - 1 - first;
      r.running.push_back(std::exp(nll / static_cast<double>(r.scored)));
      if (on_chunk) on_chunk(r.running.size(), r.running.back());
    }
  }
  const double count = static_cast<double>(r.scored);
  const double mean = nll / count;
  const double variance = nll2 / count - mean * mean;
  r.ppl = std::exp(mean);
  r.ppl_error = variance > 0 && count > 1 ? std::sqrt(variance / (count - 1)) * r.ppl : 0.0;
  return r;
}

}  // namespace ll::exec
