#include "cli/log_options.h"

#include <string>

#include "core/log.h"

namespace ll::cli {

void add_log_options(CLI::App& app) {
  // Applied as they are parsed, so they hold before any subcommand runs.
  app.add_flag_callback(
      "-v,--verbose", [] { log::set_level(log::Level::debug); }, "log everything (--log-level debug)");
  app.add_option_function<std::string>(
         "--log-level", [](const std::string& name) { log::set_level(*log::parse_level(name)); },
         "error, warn, info (the default) or debug")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}));
  app.add_option_function<std::string>(
         "--log-format",
         [](const std::string& name) { log::set_format(name == "json" ? log::Format::json : log::Format::text); },
         "text (the default: timestamped lines) or json (one object per line, for machines)")
      ->check(CLI::IsMember({"text", "json"}));
  // Subcommands hand options they do not know to the program, so `worker -v` works too.
  app.fallthrough();
}

}  // namespace ll::cli
