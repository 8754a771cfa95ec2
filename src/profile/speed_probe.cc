#include "profile/speed_probe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "kernels/matmul.h"
#include "kernels/quantize.h"

namespace ll::profile {
namespace {

// About 4 ms of one core: long enough that a CPU quota's periods (a few ms) show in it.
constexpr int64_t kRows = 1024, kCols = 2048, kTokens = 32;

struct Workload {
  std::vector<uint8_t> weights;  // kRows rows of kCols, Q8_0
  std::vector<float> x;          // kTokens vectors of kCols
};

const Workload& workload() {
  static const Workload w = [] {
    Workload w;
    const int64_t row = row_bytes(DType::Q8_0, kCols);
    w.weights.resize(static_cast<size_t>(row * kRows));
    std::vector<float> values(kCols);
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t c = 0; c < kCols; ++c) values[c] = static_cast<float>(std::sin(0.37 * static_cast<double>(r * kCols + c)));
      kernels::quantize_row(DType::Q8_0, values.data(), w.weights.data() + r * row, kCols);
    }
    w.x.resize(kCols * kTokens);
    for (size_t i = 0; i < w.x.size(); ++i) w.x[i] = static_cast<float>(std::cos(0.11 * static_cast<double>(i)));
    return w;
  }();
  return w;
}

}  // namespace

double probe_speed(ThreadPool& pool, int repetitions) {
  LL_CHECK(repetitions >= 1);
  const Workload& w = workload();
  std::vector<float> y(kRows * kTokens);
  // The mean over all repetitions, timed as one span: a quota lets a short burst run at full
  // speed, so the median of short runs would not see it.
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) {
    kernels::matmul(DType::Q8_0, w.weights.data(), kRows, kCols, w.x.data(), kTokens, y.data(), &pool);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repetitions;
}

}  // namespace ll::profile
