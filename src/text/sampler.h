#pragma once
// Token sampling: repetition penalty -> temperature -> top-k -> top-p -> min-p -> draw.
// temp <= 0 is greedy. With top_k = 0, min_p = 0 and repeat_penalty = 1 the draw equals
// llama2.c run.c's (xorshift64* RNG, one coin per token) so seeded runs reproduce its text.
// Temperature comes first as in run.c: top-p and min-p judge the tempered probabilities
// (top-k would pick the same tokens either way).
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace ll::text {

// The ranges are validate()'s, as in llama.cpp.
struct SamplerParams {
  float temp = 0.8f;        // finite; <= 0 = greedy
  int32_t top_k = 40;       // >= 0; 0 = off
  float top_p = 0.95f;      // 0..1; 1 = off
  float min_p = 0.05f;      // 0..1; 0 = off
  float repeat_penalty = 1.0f;  // finite, > 0; 1 = off
  int32_t repeat_last_n = 64;   // >= -1; 0 = off, -1 = every accepted token
  uint64_t seed = 0;
};

// Ok, or an error naming the first setting outside its range. The one check of sampler settings,
// made where they come from a user (the CLI) and from the network (a worker's Step check).
Status validate(const SamplerParams& params);

struct TokenProb {
  int32_t id;
  float p;
};

// Everything a Sampler's future draws depend on, so that another process continues its draws
// exactly (a sequence's last stage moving to another device).
struct SamplerState {
  SamplerParams params;
  uint64_t rng_state = 0;
  std::vector<int32_t> recent;  // the accepted tokens the repetition penalty sees, oldest first
};

class Sampler {
 public:
  Sampler(SamplerParams params, int32_t n_vocab);
  static Sampler restore(const SamplerState& state, int32_t n_vocab);
  SamplerState state() const { return {params_, rng_state_, recent_}; }
  // logits is modified (penalties, temperature).
  int32_t sample(float* logits);
  // The tokens sample() would draw from, in draw order, with their softmax probabilities after
  // top-k (not renormalized after top-p / min-p). Greedy (temp <= 0) gives the argmax alone.
  // logits is modified like in sample(); no random number is consumed.
  std::vector<TokenProb> candidates(float* logits) const;
  // As if `n` tokens had been sampled: their random draws are consumed (none when greedy), so a
  // sequence replayed from its tokens continues its draws where they were.
  void skip_draws(uint64_t n);
  // Records a token of the context (prompt or generated) for the repetition penalty.
  void accept(int32_t token);
  const SamplerParams& params() const { return params_; }

 private:
  SamplerParams params_;
  int32_t n_vocab_;
  uint64_t rng_state_;
  std::vector<int32_t> recent_;  // the last repeat_last_n accepted tokens, oldest first
  float random_f32();
  // candidates(); returns whether the draw must scale the coin by the kept mass (after top-p,
  // or when min-p removed tokens).
  bool filter(float* logits, std::vector<TokenProb>& out) const;
};

}  // namespace ll::text
