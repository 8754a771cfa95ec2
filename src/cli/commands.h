#pragma once
// Each subcommand of `lingualinked` registers itself on the CLI11 app.
#include <CLI/CLI.hpp>

namespace ll::cli {

void add_run_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_graph_commands(CLI::App& app);  // graph, split

}  // namespace ll::cli
