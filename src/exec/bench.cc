#include "exec/bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "core/memory_bandwidth.h"
#include "core/system_memory.h"
#include "exec/segment_executor.h"
#include "model/arch.h"
#include "model/llama_weights.h"

namespace ll::exec {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void mean_stddev(const std::vector<double>& v, double& mean, double& sd) {
  mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(sq / (v.size() - 1)) : 0.0;
}

struct TestRun {
  std::vector<double> speeds;  // tokens per second of each repetition
  uint64_t resident_bytes = 0;  // at its end, while its sequence's KV cache is still held
};

// Every repetition starts at position `depth`, after the first `depth` tokens (filled once,
// untimed, in chunks of 512).
// `before_each` runs before every repetition, untimed.
Result<TestRun> run_test(SegmentExecutor& ex, const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen,
                         int reps, int64_t depth = 0, const std::function<void()>& before_each = {}) {
  std::vector<float> hidden(static_cast<size_t>(std::max<int64_t>(n_prompt, 1) * ex.n_embd()));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> logits(static_cast<size_t>(ex.n_vocab()));
  TestRun run;
  constexpr int64_t kFillChunk = 512;
  ex.free_sequence(0);
  if (!ex.create_sequence(0).ok()) return Status::Error("cannot create a sequence");
  std::vector<float> fill(static_cast<size_t>(std::min(depth, kFillChunk) * ex.n_embd()));
  for (int64_t p = 0; p < depth; p += kFillChunk) {
    const int64_t n = std::min(kFillChunk, depth - p);
    if (!ex.has_embed()) {
      for (auto& x : fill) x = normal(rng);
    }
    LL_RETURN_IF_ERROR(ex.forward(0, p, {&tokens[p], static_cast<size_t>(n)}, fill.data(), n, logits.data()));
  }
  for (int r = 0; r < reps; ++r) {
    if (before_each) before_each();
    // A segment without the embedding starts from a hidden state.
    if (!ex.has_embed()) {
      for (auto& x : hidden) x = normal(rng);
    }
    auto t0 = std::chrono::steady_clock::now();
    Status s;
    if (n_prompt > 0) {
      s = ex.forward(0, depth, {&tokens[depth], static_cast<size_t>(n_prompt)}, hidden.data(), n_prompt, logits.data());
    } else {
      for (int64_t i = 0; i < n_gen && s.ok(); ++i) {
        s = ex.forward(0, depth + i, {&tokens[depth + i], 1}, hidden.data(), 1, logits.data());
      }
    }
    LL_RETURN_IF_ERROR(s);
    run.speeds.push_back(static_cast<double>(n_prompt > 0 ? n_prompt : n_gen) / seconds_since(t0));
  }
  run.resident_bytes = resident_bytes();
  ex.free_sequence(0);
  return run;
}

}  // namespace

uint64_t bytes_per_token(const model::Model& m) {
  uint64_t total = 0;
  for (const auto& t : model::weight_instances(m.arch(), m.hparams().n_layer)) {
    const model::WeightRef& r = model::weight_ref(m.weights(), t);
    const bool streamed = t.spec->unit != model::UnitKind::Embed && t.spec->role != model::WeightRole::RopeFreqs;
    if (streamed && r.present()) total += r.tensor->nbytes;
  }
  return total;
}

Result<model::UnitRange> parse_unit_range(const std::string& text, const model::HParams& hp) {
  if (text.empty()) return model::all_units(hp);
  long long b = 0, e = 0;
  if (std::sscanf(text.c_str(), "%lld:%lld", &b, &e) != 2 || b < 0 || e <= b || e > model::unit_count(hp)) {
    return Status::Errorf("'{}' must be BEGIN:END with 0 <= BEGIN < END <= {}", text, model::unit_count(hp));
  }
  return model::UnitRange{b, e};
}

Result<std::vector<BenchResult>> run_bench(const model::Model& m, const BenchOptions& o) {
  const auto& hp = m.hparams();
  const int64_t max_tokens = std::max(*std::max_element(o.n_prompt.begin(), o.n_prompt.end()),
                                      *std::max_element(o.n_gen.begin(), o.n_gen.end())) +
                             *std::max_element(o.depth.begin(), o.depth.end());
  std::mt19937 rng(1234);
  std::vector<int32_t> tokens(static_cast<size_t>(std::max<int64_t>(max_tokens, 1)));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(hp.n_vocab));
  const uint64_t per_token = bytes_per_token(m);

  std::vector<BenchResult> rows;
  for (int t : o.threads) {
    SegmentExecutor ex(m, o.units, {.n_ctx = max_tokens + 1, .n_threads = t, .kv_types = o.kv_types});
    // Prompt rows are set against the bandwidth measured once before the tests.
    double bw = 0;
    if (std::any_of(o.n_prompt.begin(), o.n_prompt.end(), [](int64_t n) { return n > 0; })) {
      o.progress(fmt::format("threads {}: measuring memory bandwidth...", t));
      bw = measure_read_bandwidth(ex.pool());
    }
    auto warm_up = run_test(ex, tokens, std::min<int64_t>(max_tokens, 8), 0, 1);  // pages the weights in
    if (!warm_up.ok()) return warm_up.status();
    for (int64_t d : o.depth) {
      const std::string at = d > 0 ? fmt::format(" @ d{}", d) : "";
      for (int64_t np : o.n_prompt) {
        if (np <= 0) continue;
        o.progress(fmt::format("threads {}: pp{}{} x {}", t, np, at, o.repetitions));
        BenchResult r{"pp" + std::to_string(np) + at, t, 0, 0, bw, 0};
        LL_ASSIGN_OR_RETURN(TestRun run, run_test(ex, tokens, np, 0, o.repetitions, d));
        mean_stddev(run.speeds, r.mean, r.stddev);
        r.resident_bytes = run.resident_bytes;
        rows.push_back(r);
      }
      for (int64_t ng : o.n_gen) {
        if (ng <= 0) continue;
        o.progress(fmt::format("threads {}: tg{}{} x {}", t, ng, at, o.repetitions));
        // The ceiling of a generation test is measured between its repetitions: on a shared
        // host, bandwidth measured minutes before can be a third higher or lower. (The buffer
        // is freed each time, so that the resident memory stays the model's.)
        BenchResult r{"tg" + std::to_string(ng) + at, t, 0, 0, 0, 0};
        const auto measure_ceiling = [&] { r.bandwidth = std::max(r.bandwidth, measure_read_bandwidth(ex.pool(), 2)); };
        LL_ASSIGN_OR_RETURN(TestRun run, run_test(ex, tokens, 0, ng, o.repetitions, d, measure_ceiling));
        mean_stddev(run.speeds, r.mean, r.stddev);
        r.resident_bytes = run.resident_bytes;
        r.bandwidth_fraction = static_cast<double>(per_token) * r.mean / r.bandwidth;
        rows.push_back(r);
      }
    }
  }
  return rows;
}

}  // namespace ll::exec
