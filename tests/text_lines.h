#pragma once
// Text as its lines, for the tests that read what a command or a logger wrote.
#include <sstream>
#include <string>
#include <vector>

namespace ll::test {

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace ll::test
