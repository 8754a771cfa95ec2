// lingualinked: run one language model across several small devices.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"LinguaLinked: one language model across several small devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "lingualinked 0.1.0");
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
  CLI11_PARSE(app, argc, argv);
  return 0;
}
