// Where `lingualinked demo` finds a model without -m: environment, cache, shared data, download.
// Downloads go through a stand-in curl on PATH, so no test touches the network.
#include "model/demo_model.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "test_data.h"

namespace ll::model {
namespace {

namespace fs = std::filesystem;

// Sets (or, with nullopt, unsets) an environment variable for the scope, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A fresh directory per test, and an environment with no model anywhere: no LINGUALINKED_MODEL,
// an empty home, no XDG cache, and no search for shared data (which may well be found above the
// temporary directory too).
class DemoModel : public ::testing::Test {
 protected:
  DemoModel()
      : dir_(fs::path(test::temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name()))),
        model_env_("LINGUALINKED_MODEL", std::nullopt),
        xdg_env_("XDG_CACHE_HOME", std::nullopt),
        home_env_("HOME", (dir_ / "home").string()) {
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "home");
    options_.exe_path = "";
  }
  ~DemoModel() override { fs::remove_all(dir_); }

  fs::path dir_;
  ScopedEnv model_env_, xdg_env_, home_env_;
  DemoModelOptions options_;
};

TEST_F(DemoModel, EnvironmentNamingAMissingFileIsAnError) {
  ScopedEnv env("LINGUALINKED_MODEL", (dir_ / "no-such-model.gguf").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("LINGUALINKED_MODEL"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find((dir_ / "no-such-model.gguf").string()), std::string::npos) << r.error();
}

TEST_F(DemoModel, EnvironmentComesFirst) {
  write_file(dir_ / "mine.gguf", "x");
  write_file(dir_ / "home/.cache/lingualinked/models/stories15M.gguf", "x");
  ScopedEnv env("LINGUALINKED_MODEL", (dir_ / "mine.gguf").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), (dir_ / "mine.gguf").string());
}

TEST_F(DemoModel, CachedModelUnderHome) {
  const fs::path cached = dir_ / "home/.cache/lingualinked/models/stories15M.gguf";
  write_file(cached, "x");
  EXPECT_EQ(demo_model_cache_dir(), cached.parent_path().string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), cached.string());
}

TEST_F(DemoModel, CachedModelUnderXdgCacheHome) {
  const fs::path cached = dir_ / "xdg/lingualinked/models/stories15M.gguf";
  write_file(cached, "x");
  ScopedEnv xdg("XDG_CACHE_HOME", (dir_ / "xdg").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), cached.string());
  ScopedEnv relative("XDG_CACHE_HOME", "relative/dirs/are/ignored");
  EXPECT_EQ(demo_model_cache_dir(), (dir_ / "home/.cache/lingualinked/models").string());
}

TEST_F(DemoModel, SharedModelBesideTheCheckout) {
  const fs::path shared = dir_ / "shared/data/models/stories260K/stories260K.gguf";
  write_file(shared, "x");
  options_.exe_path = (dir_ / "checkout/build/lingualinked").string();  // the nearest shared/ wins
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), shared.string());
}

void expect_how_to(const std::string& e) {
  for (const char* part : {"-m MODEL.gguf", "LINGUALINKED_MODEL",
                           "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin",
                           "https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin",
                           "lingualinked convert stories15M.bin --tokenizer tokenizer.bin -o stories15M.gguf",
                           "lingualinked synth --preset test-4l --vocab VOCAB.gguf -o test.gguf"}) {
    EXPECT_NE(e.find(part), std::string::npos) << "missing '" << part << "' in:\n" << e;
  }
}

TEST_F(DemoModel, NothingFoundWithDownloadsOffSaysHowToGetAModel) {
  options_.allow_download = false;
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("downloads are off"), std::string::npos) << r.error();
  expect_how_to(r.error());
}

TEST_F(DemoModel, NothingFoundWithoutCurlSaysHowToGetAModel) {
  fs::create_directories(dir_ / "empty-bin");
  ScopedEnv path("PATH", (dir_ / "empty-bin").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("curl is not on PATH"), std::string::npos) << r.error();
  expect_how_to(r.error());
}

// A stand-in for curl: runs `script` with curl's arguments ($out: the --output file, $url: the URL).
void fake_curl(const fs::path& bin_dir, const std::string& script) {
  const fs::path curl = bin_dir / "curl";
  write_file(curl,
             "#!/bin/sh\n"
             "out=; url=\n"
             "while [ $# -gt 0 ]; do\n"
             "  case \"$1\" in --output) out=\"$2\"; shift 2 ;; *) url=\"$1\"; shift ;; esac\n"
             "done\n" +
                 script + "\n");
  fs::permissions(curl, fs::perms::owner_all);
}

TEST_F(DemoModel, FailedDownloadSaysWhyAndHowToGetAModel) {
  fake_curl(dir_ / "bin", "echo \"curl: (6) Could not resolve host\" >&2; exit 6");
  ScopedEnv path("PATH", (dir_ / "bin").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("exit status 6: could not resolve the host"), std::string::npos) << r.error();
  expect_how_to(r.error());
  // Nothing half-written is left to look like a model.
  const fs::path cache = dir_ / "home/.cache/lingualinked/models";
  for (const auto& entry : fs::directory_iterator(cache)) ADD_FAILURE() << "left behind: " << entry.path();
}

// The whole fetch offline: the stand-in curl serves the shared stories260K as "stories15M".
TEST_F(DemoModel, DownloadIsConvertedIntoTheCache) {
  const std::string bin = test::shared_data("models/stories260K/stories260K.bin");
  const std::string tok = test::shared_data("models/stories260K/tok512.bin");
  ASSERT_TRUE(test::exists(bin));
  ASSERT_TRUE(test::exists(tok));
  fake_curl(dir_ / "bin", "case \"$url\" in\n"
                          "  *stories15M.bin) exec /bin/cp '" + bin + "' \"$out\" ;;\n"
                          "  *tokenizer.bin) exec /bin/cp '" + tok + "' \"$out\" ;;\n"
                          "esac\n"
                          "exit 22");
  ScopedEnv path("PATH", (dir_ / "bin").string());
  auto r = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(r.ok()) << r.error();
  const fs::path cache = dir_ / "home/.cache/lingualinked/models";
  EXPECT_EQ(r.value(), (cache / "stories15M.gguf").string());
  // Only the GGUF stays, and the next run finds it without downloading.
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(cache)) left.push_back(entry.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"stories15M.gguf"});
  fake_curl(dir_ / "bin", "exit 99");
  auto again = find_or_fetch_demo_model(options_);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again.value(), r.value());
}

}  // namespace
}  // namespace ll::model
