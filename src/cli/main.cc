// lingualinked: run one language model across several small devices.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/log_options.h"

int main(int argc, char** argv) {
  CLI::App app{"LinguaLinked: one language model across several small devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lingualinked 0.1.0");
  ll::cli::add_log_options(app);
  ll::cli::add_run_command(app);
  ll::cli::add_info_command(app);
  ll::cli::add_convert_command(app);
  ll::cli::add_bench_command(app);
  ll::cli::add_synth_command(app);
  ll::cli::add_graph_commands(app);
  ll::cli::add_worker_command(app);
  ll::cli::add_keygen_command(app);
  ll::cli::add_demo_command(app);
  ll::cli::add_cluster_bench_command(app);
  ll::cli::add_plan_commands(app);
  ll::cli::add_perplexity_command(app);
  ll::cli::add_classify_command(app);
  ll::cli::add_chat_command(app);
  ll::cli::add_summarize_command(app);
  ll::cli::add_translate_command(app);
  ll::cli::add_serve_command(app);
  ll::cli::add_pair_command(app);
  ll::cli::add_devices_command(app);
  // CLI11 would call an unknown first word a missing subcommand.
  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "error: unknown subcommand '%s'; the subcommands are %s; see lingualinked --help\n",
                   argv[1], names.c_str());
      return static_cast<int>(CLI::ExitCodes::ExtrasError);
    }
  }
  // llama.cpp's -sys and -np, short names of several letters that CLI11 does not take.
  static char system_prompt[] = "--system-prompt";
  static char parallel[] = "--parallel";
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "-sys") argv[i] = system_prompt;
    if (std::string(argv[i]) == "-np") argv[i] = parallel;
  }
  CLI11_PARSE(app, argc, argv);
  return 0;
}
