#pragma once
// -v / --log-level / --log-format: how much the long-running parts log and in what shape
// (core/log.h). Options of the program itself, accepted before or after the subcommand.
#include <CLI/CLI.hpp>

namespace ll::cli {

void add_log_options(CLI::App& app);

}  // namespace ll::cli
