// `lingualinked run`: generate text with a model on this device.
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "cli/chat_prompt.h"
#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/logits_out.h"
#include "cli/text_input.h"
#include "exec/generate.h"
#include "model/model.h"

namespace ll::cli {

void add_run_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    TextInput prompt;
    int64_t n_predict = 128;
    int64_t n_batch = 512;
    SamplingOptions sampling;
    ClusterRunOptions cluster;
    ChatOptions chat;
    std::string logits_out;
    std::string logits_positions;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt");
  add_model_options(*cmd, args->model);
  cmd->add_option("-p,--prompt", args->prompt.text,
                  "prompt text (default: empty, generation starts from BOS); with --chat, the user's message");
  add_text_input_options(*cmd, args->prompt, "");
  cmd->get_option("-f")->description("read the prompt from FILE (- for standard input)")->excludes("-p");
  add_chat_options(*cmd, args->chat);
  add_n_predict_option(*cmd, args->n_predict);
  cmd->add_option("-b,--batch-size", args->n_batch, "prompt tokens per forward pass")->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_sampling_options(*cmd, args->sampling);
  add_cluster_run_options(*cmd, args->cluster);
  cmd->add_option("--logits-out", args->logits_out,
                  "write the raw logits to FILE: float32 little-endian, [rows][n_vocab], row 0 at the last prompt "
                  "position, row k after the k-th generated token (one device only, not with --workers)");
  cmd->add_option("--logits-positions", args->logits_positions,
                  "the rows --logits-out writes, e.g. 0,1,2 (default: every row)")
      ->needs("--logits-out");
  cmd->callback([args] {
    const std::string prompt = read_text_input(args->prompt, /*stdin_by_default=*/false);
    resolve_paired_cluster(args->cluster);
    if (!args->logits_out.empty() && !args->cluster.workers.empty()) {
      fail("--logits-out works on one device only: drop --workers, or drop --logits-out");
    }
    if (!args->cluster.workers.empty()) {
      if (args->chat.chat) fail("--chat runs on this device only; leave out --workers");
      run_on_cluster(args->cluster, args->model,
                     {prompt, args->n_predict, sampler_params(args->sampling), args->cluster.parallel, "", {}, {}, {}});
      return;
    }
    auto t_load = std::chrono::steady_clock::now();
    args->model.whole_model = true;
    auto loaded = load_model_or_exit(args->model);
    model::Model& m = *loaded;
    exec::SegmentExecutor executor(m, model::all_units(m.hparams()), exec_options(args->model, m.hparams()));
    auto tok = text::Tokenizer::create(m.vocab());
    if (!tok.ok()) fail(tok.error());
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

    exec::GenerateOptions opts;
    opts.prompt = args->chat.chat ? chat_prompt(args->chat, prompt, m) : prompt;
    opts.parse_special = args->chat.chat;  // the template's markers are control tokens
    opts.n_predict = args->n_predict;
    opts.n_batch = args->n_batch;
    opts.sampling = sampler_params(args->sampling);
    std::unique_ptr<LogitsWriter> logits_out;
    int64_t logits_rows = 0;
    if (!args->logits_out.empty()) {
      logits_out = or_exit(LogitsWriter::open(args->logits_out, or_exit(parse_logits_positions(args->logits_positions))));
      opts.on_logits = [&](int64_t row, std::span<const float> logits) {
        logits_rows = row + 1;
        return logits_out->write(row, logits);
      };
    }
    std::fprintf(stderr, "%s: %s, %lld layers, %d threads (%s), seed %llu, loaded in %.2f s\n",
                 args->model.path.c_str(), m.hparams().arch.c_str(), static_cast<long long>(m.hparams().n_layer),
                 executor.pool().size(), simd_name(), static_cast<unsigned long long>(opts.sampling.seed), load_s);
    auto result = exec::generate(executor, tok.value(), opts, [](const std::string& piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    if (!result.ok()) fail(result.error());
    if (logits_out) {
      const Status closed = logits_out->close(logits_rows);
      if (!closed.ok()) fail(closed.message());
    }
    const auto& r = result.value();
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s (%.2f tokens/s)\n", r.prompt_tokens.size(), r.prompt_seconds,
                 r.prompt_tokens.size() / std::max(r.prompt_seconds, 1e-9));
    std::fprintf(stderr, "generation: %zu tokens in %.3f s (%.2f tokens/s)\n", r.tokens.size(), r.generate_seconds,
                 r.tokens.size() / std::max(r.generate_seconds, 1e-9));
  });
}

}  // namespace ll::cli
