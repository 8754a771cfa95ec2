#pragma once
// Runs the `lingualinked` command of this build (LL_CLI_PATH) as a process: exit code, stdout and
// stderr, for the tests of the commands.
#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "test_data.h"

namespace ll::test {

struct CliOutcome {
  int exit_code = -1;  // -1: it did not exit by itself
  std::string out, err;
};

// `args` as a shell would split them; killed after `timeout_seconds`.
inline CliOutcome run_cli(const std::string& args, int timeout_seconds = 120) {
  const std::string err_path = temp_path("stderr.txt");
  const std::string command = fmt::format("timeout {} '{}' {} 2>'{}'", timeout_seconds, LL_CLI_PATH, args, err_path);
  std::FILE* p = popen(command.c_str(), "r");
  CliOutcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.out.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  std::ifstream err(err_path);
  o.err.assign(std::istreambuf_iterator<char>(err), {});
  return o;
}

}  // namespace ll::test
