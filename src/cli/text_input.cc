#include "cli/text_input.h"

#include <cstdio>

#include "cli/common_options.h"
#include "core/regular_file.h"

namespace ll::cli {
namespace {

constexpr size_t kMaxInputBytes = size_t{64} << 20;

std::string read_stdin() {
  std::string text;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;) {
    text.append(buf, n);
    if (text.size() > kMaxInputBytes) fail("standard input holds more than 64 MiB of text");
  }
  if (std::ferror(stdin)) fail("cannot read standard input");
  return text;
}

}  // namespace

void add_text_input_options(CLI::App& cmd, TextInput& in, const std::string& positional_help) {
  if (!positional_help.empty()) cmd.add_option("text", in.text, positional_help);
  cmd.add_option("-f,--file", in.file, "read the text from FILE (- for standard input)");
}

std::string read_text_input(const TextInput& in, bool stdin_by_default) {
  if (!in.text.empty() && !in.file.empty()) fail("give the text or -f FILE, not both");
  if (in.file == "-") return read_stdin();
  if (!in.file.empty()) return or_exit(read_regular_file(in.file, kMaxInputBytes));
  if (in.text.empty() && stdin_by_default) return read_stdin();
  return in.text;
}

}  // namespace ll::cli
