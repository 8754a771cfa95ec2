#pragma once
// Paths to the shared models and references the tests read in place.
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ll::test {
// LL_SHARED_DATA + "/" + relative. The environment variable LL_SHARED_DATA, when set, replaces
// the compiled-in directory (e.g. LL_SHARED_DATA=/nonexistent ctest checks that every test
// fails cleanly without the data).
std::string shared_data(const std::string& relative);

// The whole file. A file that cannot be read is a fatal failure of the current test naming the
// path, and the result is empty: callers that go on to use the contents stop first with
// ASSERT_NO_FATAL_FAILURE(text = read_text(path)).
std::string read_text(const std::string& path);
std::vector<unsigned char> read_bytes(const std::string& path);

// For ASSERT_TRUE(test::exists(path)) in tests that expect an error from a shared file, so a
// missing file is reported as missing rather than as the wrong error.
::testing::AssertionResult exists(const std::string& path);

std::string temp_path(const std::string& name);  // unique per test process
}  // namespace ll::test
