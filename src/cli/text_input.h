#pragma once
// The text a command works on: given on the command line, read from a file (-f FILE) or from
// standard input (-f -, or neither given when `stdin_by_default`).
#include <CLI/CLI.hpp>

#include <string>

namespace ll::cli {

struct TextInput {
  std::string text;  // the positional argument
  std::string file;  // -f FILE; "-" is standard input
};

// -f,--file (and the positional TEXT argument when `positional_help` is not empty).
void add_text_input_options(CLI::App& cmd, TextInput& in, const std::string& positional_help);
// The text (exits with an error on an unreadable file, both sources given, or more than 64 MiB).
std::string read_text_input(const TextInput& in, bool stdin_by_default);

}  // namespace ll::cli
