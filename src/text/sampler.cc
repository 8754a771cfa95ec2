#include "text/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ll::text {

Status validate(const SamplerParams& p) {
  // Written so that NaN fails every range (each comparison with NaN is false).
  if (!std::isfinite(p.temp)) return Status::Errorf("temperature {} is not a finite number (0 or less = greedy)", p.temp);
  if (p.top_k < 0) return Status::Errorf("top-k {} is negative (0 = off)", p.top_k);
  if (!(p.top_p >= 0.0f && p.top_p <= 1.0f)) return Status::Errorf("top-p {} is outside 0..1 (1 = off)", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return Status::Errorf("min-p {} is outside 0..1 (0 = off)", p.min_p);
  if (!(p.repeat_penalty > 0.0f && std::isfinite(p.repeat_penalty))) {
    return Status::Errorf("repeat penalty {} is not a finite number above 0 (1 = off)", p.repeat_penalty);
  }
  if (p.repeat_last_n < -1) {
    return Status::Errorf("repeat-last-n {} is below -1 (-1 = every token, 0 = off)", p.repeat_last_n);
  }
  return Status::Ok();
}

Sampler::Sampler(SamplerParams params, int32_t n_vocab) : params_(params), n_vocab_(n_vocab), rng_state_(params.seed) {
  LL_CHECK(n_vocab > 0);
}

Sampler Sampler::restore(const SamplerState& state, int32_t n_vocab) {
  Sampler s(state.params, n_vocab);
  s.rng_state_ = state.rng_state;
  s.recent_ = state.recent;
  return s;
}

void Sampler::accept(int32_t token) {
  if (params_.repeat_penalty == 1.0f || params_.repeat_last_n == 0) return;
  recent_.push_back(token);
  // A negative window means "every accepted token".
  if (params_.repeat_last_n > 0 && recent_.size() > static_cast<size_t>(params_.repeat_last_n)) recent_.erase(recent_.begin());
}

void Sampler::skip_draws(uint64_t n) {
  if (params_.temp <= 0) return;  // sample() draws nothing when greedy
  for (uint64_t i = 0; i < n; ++i) (void)random_f32();
}

// llama2.c's xorshift64* generator: a float in [0, 1) from the top 24 bits.
float Sampler::random_f32() {
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  const auto u32 = static_cast<uint32_t>((rng_state_ * 0x2545F4914F6CDD1DULL) >> 32);
  return static_cast<float>(u32 >> 8) / 16777216.0f;
}

bool Sampler::filter(float* logits, std::vector<TokenProb>& out) const {
  out.clear();
  const int32_t n = n_vocab_;

  // Repetition penalty, once per distinct recent token (llama.cpp): pushes its logit towards
  // "less likely" whatever its sign.
  if (params_.repeat_penalty != 1.0f && !recent_.empty()) {
    std::vector<int32_t> seen = recent_;
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= n) continue;
      if (logits[t] > 0) logits[t] /= params_.repeat_penalty;
      else logits[t] *= params_.repeat_penalty;
    }
  }

  if (params_.temp <= 0) {
    out.push_back({static_cast<int32_t>(std::max_element(logits, logits + n) - logits), 1.0f});
    return false;
  }
  for (int32_t i = 0; i < n; ++i) logits[i] /= params_.temp;

  // Candidates in id order, like run.c's multinomial draw; top-k leaves them sorted by logit.
  out.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) out[i] = {i, logits[i]};
  if (params_.top_k > 0 && params_.top_k < n) {
    auto by_logit = [](const TokenProb& a, const TokenProb& b) { return a.p > b.p || (a.p == b.p && a.id < b.id); };
    std::partial_sort(out.begin(), out.begin() + params_.top_k, out.end(), by_logit);
    out.resize(static_cast<size_t>(params_.top_k));
  }

  // Softmax in run.c's float arithmetic and order.
  float max_logit = out[0].p;
  for (const auto& c : out) max_logit = std::max(max_logit, c.p);
  float sum = 0.0f;
  for (auto& c : out) {
    c.p = std::exp(c.p - max_logit);
    sum += c.p;
  }
  for (auto& c : out) c.p /= sum;

  bool truncated = false;
  if (params_.top_p > 0.0f && params_.top_p < 1.0f && out.size() > 1) {
    // run.c's top-p: tokens below (1-p)/(n-1) cannot be in the nucleus, so drop them before
    // sorting; then keep the most likely tokens until their sum first exceeds p.
    const float cutoff = (1.0f - params_.top_p) / static_cast<float>(out.size() - 1);
    std::vector<TokenProb> kept;
    for (const auto& c : out) {
      if (c.p >= cutoff) kept.push_back(c);
    }
    // A nucleus smaller than any single token still holds the most likely one.
    if (kept.empty()) kept.push_back(*std::max_element(out.begin(), out.end(), [](auto& a, auto& b) { return a.p < b.p; }));
    std::stable_sort(kept.begin(), kept.end(), [](const TokenProb& a, const TokenProb& b) { return a.p > b.p; });
    float cumulative = 0.0f;
    size_t last = kept.size() - 1;
    for (size_t i = 0; i < kept.size(); ++i) {
      cumulative += kept[i].p;
      if (cumulative > params_.top_p) {
        last = i;
        break;
      }
    }
    kept.resize(last + 1);
    out = std::move(kept);
    truncated = true;
  }

  if (params_.min_p > 0.0f) {
    float max_p = 0.0f;
    for (const auto& c : out) max_p = std::max(max_p, c.p);
    // The most likely token always stays (llama.cpp's min_keep = 1), even for min_p > 1.
    const float threshold = std::min(params_.min_p * max_p, max_p);
    const size_t before = out.size();
    std::erase_if(out, [&](const TokenProb& c) { return c.p < threshold; });
    truncated = truncated || out.size() != before;
  }
  return truncated;
}

std::vector<TokenProb> Sampler::candidates(float* logits) const {
  std::vector<TokenProb> out;
  filter(logits, out);
  return out;
}

int32_t Sampler::sample(float* logits) {
  std::vector<TokenProb> c;
  const bool truncated = filter(logits, c);
  if (params_.temp <= 0) return c[0].id;

  // Inverse CDF. Over a full distribution the coin is used as is (run.c's sample_mult); after
  // top-p or min-p it is scaled by the kept mass (run.c's sample_topp).
  float r = random_f32();
  if (truncated) {
    float mass = 0.0f;
    for (const auto& t : c) mass += t.p;
    r *= mass;
  }
  float cdf = 0.0f;
  for (const auto& t : c) {
    cdf += t.p;
    if (r < cdf) return t.id;
  }
  return c.back().id;  // rounding
}

}  // namespace ll::text
