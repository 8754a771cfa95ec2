// `lingualinked classify`: the probability of each label for a text (sentiment, topics, ...), by
// the likelihood the model gives each label after an instruction prompt (exec/classify.h); on
// this device or on workers (--workers, as `run` takes them).
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/text_input.h"
#include "cluster/head_scorer.h"
#include "cluster/pipeline.h"
#include "exec/classify.h"

namespace ll::cli {
namespace {

void print(const exec::Classification& c, bool json) {
  if (json) {
    nlohmann::json labels = nlohmann::json::array();
    for (const exec::LabelScore& s : c.labels) {
      labels.push_back({{"label", s.label}, {"probability", s.probability}, {"log_likelihood", s.log_likelihood},
                        {"tokens", s.n_tokens}});
    }
    std::printf("%s\n", nlohmann::json{{"prompt_tokens", c.prompt_tokens}, {"labels", labels}}.dump().c_str());
    return;
  }
  size_t width = 0;
  for (const exec::LabelScore& s : c.labels) width = std::max(width, s.label.size());
  for (const exec::LabelScore& s : c.labels) std::printf("%-*s %.6f\n", static_cast<int>(width), s.label.c_str(), s.probability);
}

// \n, \t and \\ in a --template typed on a shell line, as llama.cpp's --escape reads prompts.
std::string unescaped(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (s[i] == '\\' && (next == 'n' || next == 't' || next == '\\')) {
      out += next == 'n' ? '\n' : next == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

void add_classify_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    TextInput input;
    std::string labels;
    std::string tmpl{exec::kDefaultClassifyTemplate};
    bool json = false;
    int64_t n_batch = 512;
    ClusterRunOptions cluster;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "classify", "Probability of each label for a text (e.g. sentiment): each label's likelihood after the prompt");
  add_model_options(*cmd, a->model);
  add_text_input_options(*cmd, a->input, "the text to classify (default: -f, else standard input)");
  cmd->add_option("--labels", a->labels, "the labels to choose from, comma-separated (2 to 64)")->required();
  cmd->add_option("--template", a->tmpl,
                  "the prompt around the text: {text} is the text, {labels} the labels joined with \", \"; each "
                  "label is scored after it and a space; \\n is a newline (default: \"Classify the text as "
                  "{labels}.\\nText: {text}\\nAnswer:\")");
  cmd->add_flag("--json", a->json, "print {\"prompt_tokens\":N,\"labels\":[{\"label\",\"probability\","
                                   "\"log_likelihood\",\"tokens\"},...]} (most probable first)");
  cmd->add_option("-b,--batch-size", a->n_batch, "tokens per forward pass (on this device)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_cluster_run_options(*cmd, a->cluster);
  // One scoring run: nothing to generate in parallel, balance or draw a timeline of.
  for (const char* unused : {"--parallel", "--balance", "--timeline", "--ub"}) cmd->remove_option(cmd->get_option(unused));
  cmd->callback([a] {
    const std::vector<std::string> labels = exec::split_labels(a->labels);
    const Status valid = exec::validate_labels(labels);
    if (!valid.ok()) fail(valid.message());
    const std::string text = read_text_input(a->input, /*stdin_by_default=*/true);
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail("the text to classify is empty");
    const std::string prompt = or_exit(exec::classify_prompt(unescaped(a->tmpl), text, labels));
    const bool local = a->cluster.workers.empty();
    a->model.whole_model = local;
    auto model = load_model_or_exit(a->model);
    auto tokenizer = text::Tokenizer::create(model->vocab());
    if (!tokenizer.ok()) fail(tokenizer.error());
    if (local) {
      exec::SegmentExecutor executor(*model, model::all_units(model->hparams()), exec_options(a->model, model->hparams()));
      print(or_exit(exec::classify(tokenizer.value(), exec::score_sharing_prefix(executor, a->n_batch), prompt, labels)),
            a->json);
      return;
    }
    a->cluster.balance.balance = "off";
    const int in_flight = static_cast<int>(labels.size());
    auto pipeline = cluster::start_pipeline(a->model.path, *model,
                                            pipeline_options(a->cluster, a->model, model->hparams(), in_flight));
    if (!pipeline.ok()) fail(pipeline.error());
    print(or_exit(exec::classify(tokenizer.value(), cluster::score_on_head(*pipeline->head), prompt, labels)),
          a->json);
  });
}

}  // namespace ll::cli
