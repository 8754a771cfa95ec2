// Fuzzes text::Sampler with arbitrary settings (any float, including NaN, infinities and
// negatives; any top-k and window), vocabulary size, accepted tokens (in and out of range) and
// logits: every draw must be a token of the vocabulary.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <vector>

#include "text/sampler.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  ll::text::SamplerParams params;
  params.temp = in.ConsumeFloatingPoint<float>();
  params.top_k = in.ConsumeIntegral<int32_t>();
  params.top_p = in.ConsumeFloatingPoint<float>();
  params.min_p = in.ConsumeFloatingPoint<float>();
  params.repeat_penalty = in.ConsumeFloatingPoint<float>();
  params.repeat_last_n = in.ConsumeIntegral<int32_t>();
  params.seed = in.ConsumeIntegral<uint64_t>();
  const int32_t n_vocab = in.ConsumeIntegralInRange<int32_t>(1, 512);

  ll::text::Sampler sampler(params, n_vocab);
  const int n_accepted = in.ConsumeIntegralInRange<int>(0, 64);
  for (int i = 0; i < n_accepted; ++i) sampler.accept(in.ConsumeIntegral<int32_t>());

  const int n_draws = in.ConsumeIntegralInRange<int>(1, 4);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (int draw = 0; draw < n_draws; ++draw) {
    for (float& l : logits) l = in.ConsumeFloatingPoint<float>();
    std::vector<float> copy = logits;
    for (const ll::text::TokenProb& c : sampler.candidates(copy.data())) {
      if (c.id < 0 || c.id >= n_vocab) __builtin_trap();
    }
    const int32_t token = sampler.sample(logits.data());
    if (token < 0 || token >= n_vocab) __builtin_trap();
    sampler.accept(token);
  }
  return 0;
}
