#include "cli/chunk_bench.h"

#include <fmt/format.h>

#include <algorithm>

#include "cli/common_options.h"
#include "cluster/cluster_bench.h"
#include "cluster/model_access.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"

namespace ll::cli {

double ChunkBenchResult::median_seconds() const {
  if (prompt_seconds.empty()) return 0;
  std::vector<double> s = prompt_seconds;
  std::sort(s.begin(), s.end());
  const size_t m = s.size() / 2;
  return s.size() % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

Result<std::vector<ChunkBenchResult>> run_chunk_bench(const model::Model& model, const ChunkBenchOptions& o) {
  LL_ASSIGN_OR_RETURN(emulate::LocalClusterOptions local, emulate::local_cluster_options(o.devices, o.threads, "bench"));
  local.model_dirs = {cluster::model_directory(o.model_path)};
  print_progress(fmt::format("starting {} workers...", local.devices.size()));
  LL_ASSIGN_OR_RETURN(auto workers, emulate::LocalCluster::start(local));
  for (const std::string& note : workers->notes()) print_progress(note);
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.planning = o.planning;
  p.progress = print_progress;
  p.load.n_ctx = o.n_prompt + 2;
  p.balance.enabled = false;  // every size on the same placement
  LL_ASSIGN_OR_RETURN(cluster::Pipeline pipeline, cluster::start_pipeline(o.model_path, model, std::move(p)));
  const std::vector<int32_t> tokens = cluster::bench_tokens(model, static_cast<size_t>(o.n_prompt));
  const std::vector<cluster::Request> request = cluster::bench_requests(tokens, o.n_prompt, 1, 1);
  std::vector<ChunkBenchResult> results(o.sizes.size());
  // One unmeasured run pages the weights in and warms the links.
  pipeline.head->set_prompt_chunk(o.n_prompt);
  const auto warm = pipeline.head->generate(request, [](size_t, const std::string&) {});
  if (!warm[0].status.ok()) return warm[0].status;
  for (int r = 0; r < o.repetitions; ++r) {
    for (size_t i = 0; i < o.sizes.size(); ++i) {
      pipeline.head->set_prompt_chunk(o.sizes[i]);
      const auto gens = pipeline.head->generate(request, [](size_t, const std::string&) {});
      if (!gens[0].status.ok()) return gens[0].status;
      results[i].setting = o.sizes[i];
      results[i].chunk = gens[0].prompt_chunk;
      results[i].prompt_seconds.push_back(gens[0].prompt_seconds);
      print_progress(fmt::format("round {}: --ubatch-size {} (chunks of {}): {:.3f} s", r + 1, o.sizes[i],
                                 gens[0].prompt_chunk, gens[0].prompt_seconds));
    }
  }
  return results;
}

std::string chunk_bench_markdown(const std::vector<ChunkBenchResult>& results, int64_t n_prompt) {
  std::string out = "| --ubatch-size | chunk (tokens) | prompt tokens | prompt s (median) | prompt s (each round) | "
                    "pp t/s | speed-up vs the first row |\n| ---: | ---: | ---: | ---: | --- | ---: | ---: |\n";
  const double first = results.empty() ? 0 : results.front().median_seconds();
  for (const ChunkBenchResult& r : results) {
    std::string rounds;
    for (double s : r.prompt_seconds) rounds += fmt::format("{}{:.3f}", rounds.empty() ? "" : ", ", s);
    const double median = r.median_seconds();
    out += fmt::format("| {} | {} | {} | {:.3f} | {} | {:.1f} | {:.2f}x |\n", r.setting, r.chunk, n_prompt, median,
                       rounds, n_prompt / median, first / median);
  }
  return out;
}

}  // namespace ll::cli
