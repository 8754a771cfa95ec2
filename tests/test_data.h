#pragma once
// Paths to the shared models and references the tests read in place.
#include <string>
#include <vector>

namespace ll::test {
std::string shared_data(const std::string& relative);  // LL_SHARED_DATA + "/" + relative
std::string read_text(const std::string& path);          // whole file; fails the test if missing
std::vector<unsigned char> read_bytes(const std::string& path);
std::string temp_path(const std::string& name);           // unique per test process
}  // namespace ll::test
