// Row operations on every compiled and supported Highway target against straightforward
// scalar versions, over lengths around the vector sizes and misaligned pointers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "highway_target_scope.h"
#include "hwy/targets.h"
#include "kernels/ops.h"

namespace ll::kernels {
namespace {

using test::TargetScope;

const int64_t kLengths[] = {1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 2048, 5632};

std::vector<float> random_vector(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n + 4);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(OpsTest, MatchScalarOnEveryTarget) {
  std::string names;
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    TargetScope scope(target);
    const std::string name = hwy::TargetName(target);
    names += names.empty() ? name : " " + name;
    std::mt19937 rng(42);
    for (int64_t n : kLengths) {
      for (int offset : {0, 1, 3}) {
        auto a = random_vector(n, rng), b = random_vector(n, rng), w = random_vector(n, rng);
        const float* x = a.data() + offset;
        const float* y = b.data() + offset;

        // dot: within float rounding of the sum of |terms|.
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n; ++i) {
          want += static_cast<double>(x[i]) * y[i];
          mag += std::fabs(static_cast<double>(x[i]) * y[i]);
        }
        EXPECT_NEAR(dot_f32(x, y, n), want, 1e-6 * mag + 1e-30) << name << " n " << n;

        // axpy and add_inplace: element-wise, so exact up to one rounding (fused or not).
        std::vector<float> out(b.begin() + offset, b.begin() + offset + n);
        axpy(out.data(), 0.75f, x, n);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(out[i], y[i] + 0.75f * x[i], 1e-6f * (std::fabs(y[i]) + std::fabs(0.75f * x[i])))
              << name << " axpy n " << n;
        }
        out.assign(b.begin() + offset, b.begin() + offset + n);
        add_inplace(out.data(), x, n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], y[i] + x[i]) << name << " add n " << n;

        // rmsnorm: sum of squares in double as ggml, then (x * scale) * weight.
        double ss = 0;
        for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i] * x[i]);
        const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + 1e-5f);
        out.assign(n, 0.0f);
        rmsnorm(out.data(), x, w.data() + offset, n, 1e-5f);
        for (int64_t i = 0; i < n; ++i) {
          const float expect = x[i] * scale * w[offset + i];
          ASSERT_NEAR(out[i], expect, 1e-6f * std::fabs(expect)) << name << " rmsnorm n " << n;
        }
      }
    }
  }
  // In the test report (--gtest_output=xml): which targets this CPU ran, e.g. SVE2 under qemu's `max`.
  RecordProperty("targets", names);
}

TEST(OpsTest, RmsnormKnownValues) {
  const float x[4] = {1, -1, 1, -1};
  const float w[4] = {1, 2, 3, 4};
  float out[4];
  rmsnorm(out, x, w, 4, 0.0f);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[3], -4.0f);
}

TEST(OpsTest, Softmax) {
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    auto v = random_vector(n, rng, 5.0f);
    v.resize(n);
    std::vector<float> s = v;
    softmax(s.data(), n);
    float max = v[0];
    for (float x : v) max = std::max(max, x);
    double sum = 0;
    for (float x : v) sum += std::exp(static_cast<double>(x) - max);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(s[i], std::exp(static_cast<double>(v[i]) - max) / sum, 1e-6);
      total += s[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
  // Large inputs do not overflow; masked (-inf) entries get probability 0.
  float big[3] = {1000.0f, 1000.0f, -INFINITY};
  softmax(big, 3);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
  EXPECT_FLOAT_EQ(big[1], 0.5f);
  EXPECT_EQ(big[2], 0.0f);
}

TEST(OpsTest, SiluMul) {
  float gate[5] = {0.0f, 1.0f, -1.0f, 20.0f, -100.0f};
  const float up[5] = {2.0f, 3.0f, 1.0f, 0.5f, 1.0f};
  const float expect[5] = {0.0f, 3.0f / (1.0f + std::exp(-1.0f)), -1.0f / (1.0f + std::exp(1.0f)),
                           20.0f / (1.0f + std::exp(-20.0f)) * 0.5f, 0.0f};
  silu_mul(gate, up, 5);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(gate[i], expect[i], 1e-6f * (1 + std::fabs(expect[i]))) << i;
}

}  // namespace
}  // namespace ll::kernels
