// `lingualinked chat`: a conversation on this device or on workers (--workers, --cluster). Each
// line of standard input is a user message; the whole conversation so far is rendered with the
// chat template every turn and the reply streamed to standard output, one reply per line (a "> "
// prompt when stdin is a terminal).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cli/chat_prompt.h"
#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "exec/generate.h"
#include "model/chat_prompt.h"
#include "server/cluster_engine.h"

namespace ll::cli {
namespace {

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

struct ChatArgs {
  ModelOptions model;
  ChatOptions chat;
  int64_t n_predict = 256;
  int64_t n_batch = 512;
  SamplingOptions sampling;
  bool verbose_prompt = false;
  ClusterRunOptions cluster;
};

struct Reply {
  Status status;
  size_t prompt_tokens = 0, tokens = 0;
};
using OnText = std::function<void(const std::string&)>;
// Generates the reply to a rendered conversation, streaming its text.
using Replier = std::function<Reply(const std::string& prompt, const OnText& on_text)>;

// The conversation: a user message per line of standard input, each reply from `reply`.
void converse(const ChatArgs& a, const model::Model& m, const Replier& reply) {
  const text::ChatTemplate tmpl = chat_template(a.chat, m);
  std::vector<text::ChatMessage> messages;
  if (!a.chat.system_prompt.empty()) messages.push_back({"system", a.chat.system_prompt});
  const bool terminal = isatty(STDIN_FILENO) != 0;
  for (int turn = 1;;) {
    if (terminal) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    std::string line;
    if (!std::getline(std::cin, line)) break;
    line = trimmed(line);
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const std::string prompt = model::render_chat_prompt(tmpl, messages, m);
    if (a.verbose_prompt) std::fprintf(stderr, "turn %d prompt:\n%s\n[end of prompt]\n", turn, prompt.c_str());
    std::string text;
    const auto t0 = std::chrono::steady_clock::now();
    const Reply r = reply(prompt, [&](const std::string& piece) {
      text += piece;
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!r.status.ok()) fail("turn " + std::to_string(turn) + ": " + r.status.message());
    std::fprintf(stderr, "turn %d: prompt %zu tokens, reply %zu tokens in %.3f s\n", turn, r.prompt_tokens, r.tokens,
                 seconds);
    // Surrounding whitespace is the template's to write.
    messages.push_back({"assistant", trimmed(text)});
    ++turn;
  }
}

}  // namespace

void add_chat_command(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand(
      "chat", "Talk with the model: each line of standard input is a message, each reply is streamed back");
  add_model_options(*cmd, a->model);
  add_chat_template_options(*cmd, a->chat);
  add_n_predict_option(*cmd, a->n_predict);
  cmd->add_option("-b,--batch-size", a->n_batch, "prompt tokens per forward pass (on this device)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_sampling_options(*cmd, a->sampling);
  cmd->add_flag("--verbose-prompt", a->verbose_prompt, "print each turn's rendered conversation to stderr");
  add_cluster_run_options(*cmd, a->cluster);
  // One conversation, one sequence; and no single run to draw a timeline of.
  cmd->remove_option(cmd->get_option("--parallel"));
  cmd->remove_option(cmd->get_option("--timeline"));
  cmd->callback([a] {
    resolve_paired_cluster(a->cluster);  // --cluster: the paired devices become --workers
    const bool local = a->cluster.workers.empty();
    a->model.whole_model = local;
    auto loaded = load_model_or_exit(a->model);
    const model::Model& m = *loaded;
    auto tok = text::Tokenizer::create(m.vocab());
    if (!tok.ok()) fail(tok.error());
    const text::SamplerParams sampling = sampler_params(a->sampling);
    if (local) {
      exec::SegmentExecutor executor(m, model::all_units(m.hparams()), exec_options(a->model, m.hparams()));
      converse(*a, m, [&](const std::string& prompt, const OnText& on_text) -> Reply {
        exec::GenerateOptions opts;
        opts.prompt = prompt;
        opts.parse_special = true;  // the template's markers are control tokens
        opts.n_predict = a->n_predict;
        opts.n_batch = a->n_batch;
        opts.sampling = sampling;
        auto result = exec::generate(executor, tok.value(), opts, on_text);
        if (!result.ok()) return {Status::Error(result.error())};
        return {Status::Ok(), result->prompt_tokens.size(), result->tokens.size()};
      });
      return;
    }
    // The pipeline stays up for the whole conversation; the engine keeps its session alive
    // while the user types.
    cluster::PipelineOptions p = pipeline_options(a->cluster, a->model, m.hparams(), 1);
    const int64_t n_ctx = p.load.n_ctx;
    auto pipeline = cluster::start_pipeline(a->model.path, m, std::move(p));
    if (!pipeline.ok()) fail(pipeline.error());
    pipeline->head->set_prompt_chunk(a->cluster.prompt_chunk);
    server::ClusterEngine engine(*pipeline->head, std::make_unique<text::Tokenizer>(std::move(tok).value()), n_ctx, 1);
    converse(*a, m, [&](const std::string& prompt, const OnText& on_text) -> Reply {
      std::atomic<bool> stop{false};
      const server::EngineOutcome o =
          engine.generate({prompt, /*parse_special=*/true, a->n_predict, sampling}, on_text, stop);
      return {o.status, o.prompt_tokens, o.completion_tokens};
    });
  });
}

}  // namespace ll::cli
