#include "test_data.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ll::test {

std::string shared_data(const std::string& relative) {
  const char* env = std::getenv("LL_SHARED_DATA");
  const std::string root = env != nullptr && *env != '\0' ? env : LL_SHARED_DATA;
  return root + "/" + relative;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) {
    const std::string why = std::strerror(errno);
    // FAIL() returns from the lambda only; the caller sees HasFatalFailure().
    [&] { FAIL() << "cannot read test data " << path << ": " << why; }();
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::string s = read_text(path);
  return {s.begin(), s.end()};
}

::testing::AssertionResult exists(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "missing test data " << path;
}

namespace {

// The test process's scratch folder, removed when the process exits after every test passed
// (a failure keeps it for inspection). Forked children that exit normally leave it alone.
class ScratchDir {
 public:
  ScratchDir()
      : owner_(getpid()),
        path_(std::filesystem::temp_directory_path() / ("lingualinked-test-" + std::to_string(owner_))) {}
  ~ScratchDir() {
    if (getpid() != owner_ || !::testing::UnitTest::GetInstance()->Passed()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  const pid_t owner_;
  const std::filesystem::path path_;
};

}  // namespace

std::string temp_path(const std::string& name) {
  // Constructed after gtest's UnitTest singleton, so destroyed before it.
  static const ScratchDir dir;
  std::filesystem::create_directories(dir.path());
  return (dir.path() / name).string();
}

}  // namespace ll::test
