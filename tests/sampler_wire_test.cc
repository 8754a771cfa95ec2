// The sampler settings survive the trip to the last worker unchanged.
#include "cluster/sampler_wire.h"

#include <gtest/gtest.h>

namespace ll {
namespace {

TEST(SamplerWire, RoundTripKeepsEverySetting) {
  text::SamplerParams p;
  p.temp = 0.25f;
  p.top_k = 7;
  p.top_p = 0.5f;
  p.min_p = 0.125f;
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = -1;
  p.seed = 0xFEEDFACECAFEBEEFull;
  wire::SamplerParams w;
  cluster::sampler_to_wire(p, &w);
  EXPECT_EQ(w.temp(), 0.25f);
  EXPECT_EQ(w.top_k(), 7);
  EXPECT_EQ(w.repeat_last_n(), -1);
  EXPECT_EQ(w.seed(), 0xFEEDFACECAFEBEEFull);

  // Through the encoded message, as the worker receives it.
  wire::SamplerParams decoded;
  ASSERT_TRUE(decoded.ParseFromString(w.SerializeAsString()));
  const text::SamplerParams q = cluster::sampler_from_wire(decoded);
  EXPECT_EQ(q.temp, p.temp);
  EXPECT_EQ(q.top_k, p.top_k);
  EXPECT_EQ(q.top_p, p.top_p);
  EXPECT_EQ(q.min_p, p.min_p);
  EXPECT_EQ(q.repeat_penalty, p.repeat_penalty);
  EXPECT_EQ(q.repeat_last_n, p.repeat_last_n);
  EXPECT_EQ(q.seed, p.seed);
}

TEST(SamplerWire, GreedyDefaultsRoundTrip) {
  text::SamplerParams p;
  p.temp = 0;
  wire::SamplerParams w;
  cluster::sampler_to_wire(p, &w);
  const text::SamplerParams q = cluster::sampler_from_wire(w);
  EXPECT_EQ(q.temp, 0.0f);
  EXPECT_EQ(q.top_k, text::SamplerParams{}.top_k);
  EXPECT_EQ(q.top_p, text::SamplerParams{}.top_p);
  EXPECT_EQ(q.min_p, text::SamplerParams{}.min_p);
  EXPECT_EQ(q.repeat_last_n, text::SamplerParams{}.repeat_last_n);
}

}  // namespace
}  // namespace ll
