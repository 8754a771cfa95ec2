// `lingualinked bench`: prompt and generation speed in the style of llama-bench, with the
// machine's memory bandwidth measured in the same run as the ceiling for generation.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "plan/memory_limit.h"
#include "core/memory_bandwidth.h"
#include "exec/segment_executor.h"
#include "model/model.h"

namespace ll::cli {
namespace {

struct BenchArgs {
  ModelOptions model;
  std::string units;  // "BEGIN:END" to run only a segment
  std::vector<int64_t> n_prompt = {64};
  std::vector<int64_t> n_gen = {32};
  std::vector<int> threads;
  int repetitions = 5;
  std::string output = "md";
};

struct Row {
  std::string test;  // "pp64", "tg32"
  int threads;
  double mean, stddev;  // tokens/s
  double bandwidth;     // bytes/s, measured with the same threads
  double bandwidth_fraction;  // generation only: bytes streamed per token * tokens/s / bandwidth
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Bytes a decode step reads: every bound weight, but only one row of the embedding, and the
// rope frequency factors not at all (they are read once, when the executor starts).
uint64_t bytes_per_token(const model::Model& m) {
  uint64_t total = 0;
  for (const auto& t : model::weight_instances(m.arch(), m.hparams().n_layer)) {
    const model::WeightRef& r = model::weight_ref(m.weights(), t);
    const bool streamed = t.spec->unit != model::UnitKind::Embed && t.spec->role != model::WeightRole::RopeFreqs;
    if (streamed && r.present()) total += r.tensor->nbytes;
  }
  return total;
}

model::UnitRange parse_units(const std::string& text, const model::HParams& hp) {
  if (text.empty()) return model::all_units(hp);
  long long b = 0, e = 0;
  if (std::sscanf(text.c_str(), "%lld:%lld", &b, &e) != 2 || b < 0 || e <= b || e > model::unit_count(hp)) {
    fail(fmt::format("--units '{}' must be BEGIN:END with 0 <= BEGIN < END <= {}", text, model::unit_count(hp)));
  }
  return {b, e};
}

void mean_stddev(const std::vector<double>& v, double& mean, double& sd) {
  mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  sd = v.size() > 1 ? std::sqrt(sq / (v.size() - 1)) : 0.0;
}

// Tokens per second of each repetition; every repetition starts from an empty context.
std::vector<double> run_test(exec::SegmentExecutor& ex, const std::vector<int32_t>& tokens, int64_t n_prompt,
                             int64_t n_gen, int reps) {
  std::vector<float> hidden(static_cast<size_t>(std::max<int64_t>(n_prompt, 1) * ex.n_embd()));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> logits(static_cast<size_t>(ex.n_vocab()));
  std::vector<double> speeds;
  for (int r = 0; r < reps; ++r) {
    ex.free_sequence(0);
    if (!ex.create_sequence(0).ok()) fail("cannot create a sequence");
    // A segment without the embedding starts from a hidden state.
    if (!ex.has_embed()) {
      for (auto& x : hidden) x = normal(rng);
    }
    auto t0 = std::chrono::steady_clock::now();
    Status s;
    if (n_prompt > 0) {
      s = ex.forward(0, 0, {tokens.data(), static_cast<size_t>(n_prompt)}, hidden.data(), n_prompt, logits.data());
    } else {
      for (int64_t i = 0; i < n_gen && s.ok(); ++i) s = ex.forward(0, i, {&tokens[i], 1}, hidden.data(), 1, logits.data());
    }
    if (!s.ok()) fail(s.message());
    speeds.push_back(static_cast<double>(n_prompt > 0 ? n_prompt : n_gen) / seconds_since(t0));
  }
  ex.free_sequence(0);
  return speeds;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt and generation speed against the memory bandwidth");
  cmd->add_option("-m,--model", a->model.path, "model file")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt lengths to test (comma-separated)")->delimiter(',')
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", a->n_gen, "generation lengths to test (comma-separated)")->delimiter(',')
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "thread counts (comma-separated; default: all cores)")->delimiter(',');
  cmd->add_option("-r,--repetitions", a->repetitions, "repetitions of each test")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--units", a->units, "run only units BEGIN:END (a segment), e.g. 0:12")->capture_default_str();
  cmd->add_option("-o,--output", a->output, "md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  cmd->callback([a] {
    model::UnitRange units;
    {
      auto probe = load_model_or_exit(a->model);  // metadata only: weights are mapped, not read
      units = parse_units(a->units, probe->hparams());
    }
    a->model.units = units;
    auto m = load_model_or_exit(a->model);
    const auto& hp = m->hparams();
    if (a->threads.empty()) a->threads.push_back(exec_options(a->model, hp).n_threads);
    const int64_t max_tokens = std::max(*std::max_element(a->n_prompt.begin(), a->n_prompt.end()),
                                        *std::max_element(a->n_gen.begin(), a->n_gen.end()));
    std::mt19937 rng(1234);
    std::vector<int32_t> tokens(static_cast<size_t>(std::max<int64_t>(max_tokens, 1)));
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(hp.n_vocab));
    const uint64_t per_token = bytes_per_token(*m);

    std::vector<Row> rows;
    for (int t : a->threads) {
      exec::SegmentExecutor ex(*m, units, {.n_ctx = max_tokens + 1, .n_threads = t});
      std::fprintf(stderr, "threads %d: measuring memory bandwidth...\n", t);
      const double bw = measure_read_bandwidth(ex.pool());
      run_test(ex, tokens, std::min<int64_t>(max_tokens, 8), 0, 1);  // warm-up: page in the weights
      for (int64_t np : a->n_prompt) {
        if (np <= 0) continue;
        std::fprintf(stderr, "threads %d: pp%lld x %d\n", t, static_cast<long long>(np), a->repetitions);
        Row r{"pp" + std::to_string(np), t, 0, 0, bw, 0};
        mean_stddev(run_test(ex, tokens, np, 0, a->repetitions), r.mean, r.stddev);
        rows.push_back(r);
      }
      for (int64_t ng : a->n_gen) {
        if (ng <= 0) continue;
        std::fprintf(stderr, "threads %d: tg%lld x %d\n", t, static_cast<long long>(ng), a->repetitions);
        Row r{"tg" + std::to_string(ng), t, 0, 0, bw, 0};
        mean_stddev(run_test(ex, tokens, 0, ng, a->repetitions), r.mean, r.stddev);
        r.bandwidth_fraction = static_cast<double>(per_token) * r.mean / bw;
        rows.push_back(r);
      }
    }

    const uint64_t rss = plan::resident_bytes();
    std::string model_name = hp.name.empty() ? a->model.path : hp.name;
    if (!a->units.empty()) model_name += " units " + a->units;
    if (a->output == "json") {
      nlohmann::json out = nlohmann::json::array();
      for (const Row& r : rows) {
        out.push_back({{"model", model_name}, {"model_bytes", m->weight_bytes()}, {"bytes_per_token", per_token},
                       {"threads", r.threads}, {"test", r.test}, {"tokens_per_second", r.mean},
                       {"stddev", r.stddev}, {"memory_bandwidth", r.bandwidth},
                       {"bandwidth_fraction", r.test[0] == 't' ? nlohmann::json(r.bandwidth_fraction) : nullptr},
                       {"simd", simd_name()}, {"repetitions", a->repetitions}, {"resident_bytes", rss}});
      }
      std::printf("%s\n", out.dump(1).c_str());
      return;
    }
    std::printf("| model | size | threads | test | t/s | memory bandwidth | of bandwidth limit |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const Row& r : rows) {
      std::string frac = r.test[0] == 't' ? fmt::format("{:.0f}% ({:.1f} t/s limit)", 100 * r.bandwidth_fraction,
                                                        r.bandwidth / per_token)
                                          : "";
      std::printf("| %s | %.2f MiB | %d | %s | %.2f ± %.2f | %.1f GB/s | %s |\n", model_name.c_str(),
                  m->weight_bytes() / 1048576.0, r.threads, r.test.c_str(), r.mean, r.stddev, r.bandwidth / 1e9,
                  frac.c_str());
    }
    std::printf("\nSIMD target %s; generation streams %.2f MiB of weights per token; resident memory %.2f MiB"
                " (weights file %.2f MiB).\n",
                simd_name(), per_token / 1048576.0, rss / 1048576.0, m->weight_bytes() / 1048576.0);
  });
}

}  // namespace ll::cli
