// `lingualinked bench`: prompt and generation speed in the style of llama-bench, with the
// machine's memory bandwidth measured in the same run as the ceiling for generation.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "exec/bench.h"

namespace ll::cli {
namespace {

struct BenchArgs {
  ModelOptions model;
  std::string units;  // "BEGIN:END" to run only a segment
  std::vector<int64_t> n_prompt = {64};
  std::vector<int64_t> n_gen = {32};
  std::vector<int> threads;
  std::vector<int64_t> depth = {0};
  int repetitions = 5;
  std::string output = "md";
};

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt and generation speed against the memory bandwidth");
  cmd->add_option("-m,--model", a->model.path, "model file")->required();
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt lengths to test (comma-separated)")->delimiter(',')
      ->capture_default_str()->check(context_range());
  cmd->add_option("-n,--n-gen", a->n_gen, "generation lengths to test (comma-separated)")->delimiter(',')
      ->capture_default_str()->check(context_range());
  cmd->add_option("-t,--threads", a->threads, "thread counts (comma-separated; default: all cores)")->delimiter(',')
      ->check(thread_range());
  cmd->add_option("-d,--n-depth", a->depth, "positions already in the KV cache when each test starts (comma-separated)")
      ->delimiter(',')->capture_default_str()->check(context_range());
  add_kv_type_options(*cmd, a->model.kv_types);
  add_no_mmap_option(*cmd, a->model);
  cmd->add_option("-r,--repetitions", a->repetitions, "repetitions of each test")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--units", a->units, "run only units BEGIN:END (a segment), e.g. 0:12")->capture_default_str();
  cmd->add_option("-o,--output", a->output, "md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
  cmd->callback([a] {
    {
      ModelOptions mapped = a->model;
      mapped.no_mmap = false;
      auto probe = load_model_or_exit(mapped);  // metadata only: weights are mapped, not read
      auto units = exec::parse_unit_range(a->units, probe->hparams());
      if (!units.ok()) fail("--units " + units.error());
      a->model.units = units.value();
    }
    auto m = load_model_or_exit(a->model);
    const auto& hp = m->hparams();
    if (a->threads.empty()) a->threads.push_back(exec_options(a->model, hp).n_threads);
    exec::BenchOptions o;
    o.units = *a->model.units;
    o.n_prompt = a->n_prompt;
    o.n_gen = a->n_gen;
    o.threads = a->threads;
    o.depth = a->depth;
    if (Status st = model::check_kv_types(hp, a->model.kv_types); !st.ok()) fail(st.message());
    o.kv_types = a->model.kv_types;
    o.repetitions = a->repetitions;
    o.progress = print_progress;
    const std::vector<exec::BenchResult> rows = or_exit(exec::run_bench(*m, o));
    const uint64_t per_token = exec::bytes_per_token(*m);

    std::string model_name = hp.name.empty() ? a->model.path : hp.name;
    if (!a->units.empty()) model_name += " units " + a->units;
    if (a->output == "json") {
      nlohmann::json out = nlohmann::json::array();
      for (const exec::BenchResult& r : rows) {
        out.push_back({{"model", model_name}, {"model_bytes", m->weight_bytes()}, {"bytes_per_token", per_token},
                       {"threads", r.threads}, {"test", r.test}, {"tokens_per_second", r.mean},
                       {"stddev", r.stddev}, {"memory_bandwidth", r.bandwidth},
                       {"bandwidth_fraction", r.generation() ? nlohmann::json(r.bandwidth_fraction) : nullptr},
                       {"simd", simd_name()}, {"repetitions", a->repetitions}, {"resident_bytes", r.resident_bytes}});
      }
      std::printf("%s\n", out.dump(1).c_str());
      return;
    }
    std::printf("| model | size | threads | test | t/s | memory bandwidth | of bandwidth limit | resident |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for (const exec::BenchResult& r : rows) {
      std::string frac = r.generation() ? fmt::format("{:.0f}% ({:.1f} t/s limit)", 100 * r.bandwidth_fraction,
                                                        r.bandwidth / per_token)
                                          : "";
      std::printf("| %s | %.2f MiB | %d | %s | %.2f ± %.2f | %.1f GB/s | %s | %.2f MiB |\n", model_name.c_str(),
                  m->weight_bytes() / 1048576.0, r.threads, r.test.c_str(), r.mean, r.stddev, r.bandwidth / 1e9,
                  frac.c_str(), r.resident_bytes / 1048576.0);
    }
    std::printf("\nSIMD target %s; generation streams %.2f MiB of weights per token (weights file %.2f MiB); "
                "memory bandwidth: measured with the same threads (a generation test's between its repetitions); "
                "resident: the process's memory at the end of each test, its KV cache still held.\n",
                simd_name(), per_token / 1048576.0, m->weight_bytes() / 1048576.0);
  });
}

}  // namespace ll::cli
