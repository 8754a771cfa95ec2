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
void add_worker_command(CLI::App& app);
void add_keygen_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_cluster_bench_command(CLI::App& app);

void add_plan_commands(CLI::App& app);  // plan, profile
void add_perplexity_command(CLI::App& app);
void add_classify_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_summarize_command(CLI::App& app);
void add_translate_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_pair_command(CLI::App& app);
void add_devices_command(CLI::App& app);

}  // namespace ll::cli
