// `lingualinked summarize` and `lingualinked translate`: an instruction about a text, given to
// the model as a user message in its chat template when it has one, else as a plain instruction
// prompt; generated as `run` generates, on this device or on workers (--workers).
#include <cstdio>

#include "cli/chat_prompt.h"
#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/text_input.h"
#include "exec/generate.h"

namespace ll::cli {
namespace {

struct InstructArgs {
  ModelOptions model;
  TextInput input;
  ChatOptions chat;
  int64_t n_predict = 256;
  int64_t n_batch = 512;
  SamplingOptions sampling;
  ClusterRunOptions cluster;
};

void add_instruct_options(CLI::App& cmd, InstructArgs& a, const std::string& text_help) {
  add_model_options(cmd, a.model);
  add_text_input_options(cmd, a.input, text_help);
  add_chat_template_options(cmd, a.chat);
  add_n_predict_option(cmd, a.n_predict);
  cmd.add_option("-b,--batch-size", a.n_batch, "prompt tokens per forward pass (on this device)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_sampling_options(cmd, a.sampling);
  add_cluster_run_options(cmd, a.cluster);
}

// The user message `instruction` + the text in the chat template, or `plain_prompt` for models
// without a known template; then generated here or on the workers.
void generate_instruction(InstructArgs& a, const std::string& instruction, const std::string& text,
                          const std::string& plain_prompt) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail("the text is empty");
  const bool local = a.cluster.workers.empty();
  a.model.whole_model = local;
  auto model = load_model_or_exit(a.model);
  auto tok = text::Tokenizer::create(model->vocab());
  if (!tok.ok()) fail(tok.error());
  std::string prompt = plain_prompt;
  const bool templated = known_chat_template(a.chat, *model).has_value();
  if (templated) {
    prompt = chat_prompt(a.chat, instruction + "\n\n" + text, *model);
  } else {
    std::fprintf(stderr, "the model has no known chat template: a plain instruction prompt\n");
  }
  if (!local) {
    GenerationArgs g;
    g.prompt = prompt;
    g.prompt_tokens = tok->encode(prompt, /*add_special=*/true, /*parse_special=*/templated);
    g.n_predict = a.n_predict;
    g.sampling = sampler_params(a.sampling);
    run_on_cluster(a.cluster, a.model, g);
    return;
  }
  exec::SegmentExecutor executor(*model, model::all_units(model->hparams()), exec_options(a.model, model->hparams()));
  exec::GenerateOptions opts;
  opts.prompt = prompt;
  opts.parse_special = templated;  // the template's markers are control tokens
  opts.n_predict = a.n_predict;
  opts.n_batch = a.n_batch;
  opts.sampling = sampler_params(a.sampling);
  auto result = exec::generate(executor, tok.value(), opts, [](const std::string& piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  std::fputc('\n', stdout);
  if (!result.ok()) fail(result.error());
  std::fprintf(stderr, "prompt: %zu tokens; generation: %zu tokens in %.3f s\n", result->prompt_tokens.size(),
               result->tokens.size(), result->generate_seconds);
}

}  // namespace

void add_summarize_command(CLI::App& app) {
  auto a = std::make_shared<InstructArgs>();
  CLI::App* cmd = app.add_subcommand("summarize", "Summarize a text file");
  add_instruct_options(*cmd, *a, "");
  cmd->add_option("input", a->input.file, "the text file (- for standard input)");
  cmd->callback([a] {
    if (a->input.file.empty()) fail("give the file to summarize (- for standard input)");
    const std::string text = read_text_input(a->input, /*stdin_by_default=*/false);
    generate_instruction(*a, "Summarize the following text.", text,
                         "Summarize the following text.\n\nText: " + text + "\n\nSummary:");
  });
}

void add_translate_command(CLI::App& app) {
  auto a = std::make_shared<InstructArgs>();
  CLI::App* cmd = app.add_subcommand("translate", "Translate a text into another language");
  add_instruct_options(*cmd, *a, "the text to translate (default: -f, else standard input)");
  auto to = std::make_shared<std::string>();
  cmd->add_option("--to", *to, "the language to translate into (e.g. French)")->required();
  cmd->callback([a, to] {
    if (to->find_first_not_of(" \t") == std::string::npos) fail("--to names no language");
    const std::string text = read_text_input(a->input, /*stdin_by_default=*/true);
    const std::string instruction = "Translate the following text into " + *to + ".";
    generate_instruction(*a, instruction, text, instruction + "\n\nText: " + text + "\n\n" + *to + ":");
  });
}

}  // namespace ll::cli
