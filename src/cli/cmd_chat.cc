// `lingualinked chat`: a conversation on this device. Each line of standard input is a user
// message; the whole conversation so far is rendered with the chat template every turn and the
// reply streamed to standard output, one reply per line (a "> " prompt when stdin is a terminal).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/chat_prompt.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "exec/generate.h"
#include "model/chat_prompt.h"

namespace ll::cli {
namespace {

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

void add_chat_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    ChatOptions chat;
    int64_t n_predict = 256;
    int64_t n_batch = 512;
    SamplingOptions sampling;
    bool verbose_prompt = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "chat", "Talk with the model: each line of standard input is a message, each reply is streamed back");
  add_model_options(*cmd, a->model);
  add_chat_template_options(*cmd, a->chat);
  add_n_predict_option(*cmd, a->n_predict);
  cmd->add_option("-b,--batch-size", a->n_batch, "prompt tokens per forward pass")->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_sampling_options(*cmd, a->sampling);
  cmd->add_flag("--verbose-prompt", a->verbose_prompt, "print each turn's rendered conversation to stderr");
  cmd->callback([a] {
    a->model.whole_model = true;
    auto loaded = load_model_or_exit(a->model);
    model::Model& m = *loaded;
    exec::SegmentExecutor executor(m, model::all_units(m.hparams()), exec_options(a->model, m.hparams()));
    auto tok = text::Tokenizer::create(m.vocab());
    if (!tok.ok()) fail(tok.error());
    const text::ChatTemplate tmpl = chat_template(a->chat, m);
    std::vector<text::ChatMessage> messages;
    if (!a->chat.system_prompt.empty()) messages.push_back({"system", a->chat.system_prompt});
    const bool terminal = isatty(STDIN_FILENO) != 0;
    exec::GenerateOptions opts;
    opts.parse_special = true;  // the template's markers are control tokens
    opts.n_predict = a->n_predict;
    opts.n_batch = a->n_batch;
    opts.sampling = sampler_params(a->sampling);
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
      opts.prompt = model::render_chat_prompt(tmpl, messages, m);
      if (a->verbose_prompt) std::fprintf(stderr, "turn %d prompt:\n%s\n[end of prompt]\n", turn, opts.prompt.c_str());
      std::string reply;
      auto result = exec::generate(executor, tok.value(), opts, [&](const std::string& piece) {
        reply += piece;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
      std::fputc('\n', stdout);
      std::fflush(stdout);
      if (!result.ok()) fail("turn " + std::to_string(turn) + ": " + result.error());
      std::fprintf(stderr, "turn %d: prompt %zu tokens, reply %zu tokens in %.3f s\n", turn,
                   result->prompt_tokens.size(), result->tokens.size(), result->prompt_seconds + result->generate_seconds);
      // Surrounding whitespace is the template's to write.
      messages.push_back({"assistant", trimmed(reply)});
      ++turn;
    }
  });
}

}  // namespace ll::cli
