// `lingualinked perplexity`: a model's perplexity on a text file, by llama.cpp's procedure
// (exec/perplexity.h), so that its figures can be held against llama-perplexity's; on this
// device, on workers (--workers, as `run` takes them) or on devices emulated here (--devices).
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cluster/head_scorer.h"
#include "cluster/model_access.h"
#include "cluster/pipeline.h"
#include "core/regular_file.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"
#include "exec/perplexity.h"

namespace ll::cli {
namespace {

constexpr size_t kMaxTextBytes = size_t{256} << 20;

// Prints as llama-perplexity does: the running figures on one line, then the final estimate.
void compute(std::span<const int32_t> tokens, std::optional<int32_t> bos, const exec::PerplexityOptions& options,
             const exec::ScoreChunks& score) {
  std::fprintf(stderr, "perplexity: calculating perplexity over %lld chunks, n_ctx=%lld, batch_size=%lld, n_seq=%lld\n",
               static_cast<long long>(tokens.size() / options.n_ctx), static_cast<long long>(options.n_ctx),
               static_cast<long long>(options.n_batch), static_cast<long long>(exec::chunks_per_pass(options)));
  auto result = exec::perplexity(tokens, bos, options, score, [](size_t k, double ppl) {
    std::printf("[%zu]%.4f,", k, ppl);
    std::fflush(stdout);
  });
  std::printf("\n");
  if (!result.ok()) fail(result.error());
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", result->ppl, result->ppl_error);
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    std::string file;
    int64_t n_batch = 2048;
    std::string devices;
    ClusterRunOptions cluster;
  };
  auto a = std::make_shared<Args>();
  a->model.n_ctx = 512;
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity of a model on a text file, computed as llama.cpp's llama-perplexity computes it");
  add_model_options(*cmd, a->model);
  cmd->get_option("-c")
      ->description("tokens per chunk; the second half of each chunk is scored (the text needs at least twice as many)")
      ->capture_default_str();
  cmd->add_option("-f,--file", a->file, "the text file")->required();
  cmd->add_option("-b,--batch-size", a->n_batch,
                  "tokens per forward pass: below -c a chunk takes several passes (on this device; a worker takes a "
                  "chunk in one step), above it batch-size/ctx-size chunks are scored at once")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  add_cluster_run_options(*cmd, a->cluster);
  // One scoring step per chunk: nothing to generate in parallel, balance or draw a timeline of.
  for (const char* unused : {"--parallel", "--balance", "--timeline"}) cmd->remove_option(cmd->get_option(unused));
  cmd->add_option("--devices", a->devices,
                  "run on this many worker processes started here (or device descriptions, as demo takes them)");
  cmd->callback([a] {
    if (!a->devices.empty() && !a->cluster.workers.empty()) fail("give either --workers or --devices, not both");
    const std::string text = or_exit(read_regular_file(a->file, kMaxTextBytes));
    const Status context = exec::validate_perplexity_context(a->model.n_ctx, model::kMaxContextLength);
    if (!context.ok()) fail(context.message());
    const bool local = a->devices.empty() && a->cluster.workers.empty();
    a->model.whole_model = local;
    auto model = load_model_or_exit(local ? a->model : head_model_options(a->model));
    auto tokenizer = text::Tokenizer::create(model->vocab());
    if (!tokenizer.ok()) fail(tokenizer.error());
    const text::Vocab& vocab = model->vocab();
    std::fprintf(stderr, "perplexity: tokenizing the input ..\n");
    const std::vector<int32_t> tokens = tokenizer->encode(text, /*add_special=*/true);
    const Status enough = exec::check_perplexity_tokens(static_cast<int64_t>(tokens.size()), a->model.n_ctx);
    if (!enough.ok()) fail(a->file + ": " + enough.message());
    const std::optional<int32_t> bos = vocab.add_bos ? std::optional(vocab.bos) : std::nullopt;
    exec::PerplexityOptions options{.n_ctx = a->model.n_ctx, .n_batch = a->n_batch};
    options.n_batch = std::min(options.n_batch, exec::chunks_per_pass(options) * options.n_ctx);

    if (local) {
      exec::SegmentExecutor executor(*model, model::all_units(model->hparams()), exec_options(a->model, model->hparams()));
      compute(tokens, bos, options, exec::score_on_device(executor, options.n_batch));
      return;
    }
    a->cluster.balance.balance = "off";
    const int in_flight = static_cast<int>(exec::chunks_per_pass(options));
    cluster::PipelineOptions p = pipeline_options(a->cluster, a->model, model->hparams(), in_flight);
    std::unique_ptr<emulate::LocalCluster> devices;
    std::string log_path;
    if (!a->devices.empty()) {
      emulate::LocalClusterOptions lo = or_exit(emulate::local_cluster_options(a->devices, a->model.threads, "perplexity"));
      lo.model_dirs = {cluster::model_directory(a->model.path)};
      lo.no_mmap = a->model.no_mmap;
      log_path = lo.log_path;
      std::fprintf(stderr, "starting %zu workers on loopback (logs: %s)\n", lo.devices.size(), log_path.c_str());
      auto started = emulate::LocalCluster::start(lo);
      if (!started.ok()) fail(started.error() + " (see " + log_path + ")");
      devices = std::move(started).value();
      p.head.workers = devices->addresses();
      p.head.keys = devices->head_keys();
    }
    {
      auto pipeline = cluster::start_pipeline(a->model.path, *model, std::move(p));
      if (!pipeline.ok()) fail(pipeline.error() + (log_path.empty() ? "" : " (see " + log_path + ")"));
      compute(tokens, bos, options, cluster::score_on_head(*pipeline->head));
    }  // the head closes its links before the workers go away
    if (devices) {
      devices->stop();
      std::error_code ec;
      std::filesystem::remove(log_path, ec);
    }
  });
}

}  // namespace ll::cli
