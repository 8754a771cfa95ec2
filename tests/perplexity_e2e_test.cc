// `lingualinked perplexity` prints llama-perplexity's figures for stories260K on the shared story
// text (reference/perplexity/README.md), on one device and across three worker processes, and
// says what is wrong with input it cannot score.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <string>

#include "cli_run.h"
#include "emulated_devices.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");
const std::string kText = test::shared_data("reference/perplexity/stories.txt");

// llama-perplexity's output for -c 128 and -c 256: the running figures, then the final estimate.
const std::string kRunning128 =
    "[1]3.4443,[2]3.8089,[3]3.6624,[4]3.6043,[5]3.9883,[6]4.0979,[7]4.0964,[8]4.0795,[9]4.2170,[10]4.2128,[11]4.2717,";
const std::string kRunning256 = "[1]4.1302,[2]3.7107,[3]4.0433,[4]4.1689,[5]4.0528,";

using test::CliOutcome;
CliOutcome run_cli(const std::string& args) { return test::run_cli(args, 60); }

// The final estimate to 4 significant digits of the figure and of its error, as llama.cpp gives them.
void expect_final(const std::string& out, const std::string& ppl, double error) {
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Final estimate: PPL = ([0-9.]+) \\+/- ([0-9.]+)\n"))) << out;
  EXPECT_EQ(m[1].str(), ppl);
  EXPECT_NEAR(std::stod(m[2].str()), error, 0.00005) << "the error to 4 significant digits";
}

void expect_llama_cpp_figures(const CliOutcome& o, int64_t n_ctx) {
  ASSERT_EQ(o.exit_code, 0) << o.err;
  if (n_ctx == 128) {
    EXPECT_NE(o.out.find(kRunning128 + "\n"), std::string::npos) << o.out;
    expect_final(o.out, "4.2717", 0.27574);
  } else {
    EXPECT_NE(o.out.find(kRunning256 + "\n"), std::string::npos) << o.out;
    expect_final(o.out, "4.0528", 0.26626);
  }
}

// llama.cpp computed its figures with an F32 KV cache (-ctk f32 -ctv f32); so do these runs.
TEST(PerplexityE2E, OneDeviceEqualsLlamaCpp) {
  for (int64_t n_ctx : {128, 256}) {
    SCOPED_TRACE(n_ctx);
    expect_llama_cpp_figures(run_cli(fmt::format("perplexity -m '{}' -f '{}' -c {} -b {} -t 1 --cache-type-k f32 --cache-type-v f32", kStories, kText, n_ctx,
                                                 n_ctx)),
                             n_ctx);
  }
}

TEST(PerplexityE2E, ThreeWorkersEqualLlamaCpp) {
  auto workers = test::start_devices("a:threads=1;b:threads=1;c:threads=1", {test::shared_data("models")});
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  // Every worker holds layers; -b of four chunks keeps four in flight along the pipeline.
  for (int64_t n_ctx : {128, 256}) {
    SCOPED_TRACE(n_ctx);
    const CliOutcome o = run_cli(fmt::format("perplexity -m '{}' -f '{}' -c {} -b {} -t 1 --cache-type-k f32 --cache-type-v f32 {} --cuts attn[1],attn[3]",
                                          kStories, kText, n_ctx, 4 * n_ctx, flags));
    expect_llama_cpp_figures(o, n_ctx);
  }
}

TEST(PerplexityE2E, EmulatedDevicesEqualLlamaCpp) {
  const CliOutcome o = run_cli(fmt::format("perplexity -m '{}' -f '{}' -c 256 -b 256 -t 1 --cache-type-k f32 --cache-type-v f32 --devices 3 --cuts attn[1],attn[3]",
                                        kStories, kText));
  expect_llama_cpp_figures(o, 256);
}

void expect_error(const std::string& args, const std::string& message) {
  const CliOutcome o = run_cli(args);
  EXPECT_NE(o.exit_code, 0) << args;
  EXPECT_NE(o.err.find(message), std::string::npos) << "stderr: " << o.err;
  EXPECT_EQ(o.out.find("Final estimate"), std::string::npos);
}

TEST(PerplexityE2E, TooShortOrEmptyTextsNeedTwoContexts) {
  const std::string short_text = test::temp_path("short.txt");
  std::ofstream(short_text) << "Once upon a time, there was a little cat.";
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 128", kStories, short_text),
               "but a context of 128 needs at least 2*128 = 256 tokens; give a longer text or a smaller -c");
  const std::string empty = test::temp_path("empty.txt");
  std::ofstream(empty).flush();
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 128", kStories, empty),
               "the text tokenizes to only 1 tokens, but a context of 128 needs at least 2*128 = 256 tokens");
  // The whole text holds 5 chunks of 256 but not 2 of 1024.
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 1024", kStories, kText),
               "needs at least 2*1024 = 2048 tokens");
}

TEST(PerplexityE2E, RefusesContextsThatScoreNothingOrCannotBe) {
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 2", kStories, kText),
               "a context of 2 tokens cannot be scored: -c must be 3..");
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 0", kStories, kText),
               "a context of 0 tokens cannot be scored");
  expect_error(fmt::format("perplexity -m '{}' -f '{}' -c 99999999999", kStories, kText), "-c");
}

TEST(PerplexityE2E, AMissingFileOrOptionIsNamed) {
  expect_error(fmt::format("perplexity -m '{}' -f /nonexistent/text.txt", kStories),
               "/nonexistent/text.txt: cannot open: No such file or directory");
  expect_error(fmt::format("perplexity -m '{}'", kStories), "--file is required");
  expect_error(fmt::format("perplexity -m '{}' -f '{}' --devices 2 --workers 127.0.0.1:1", kStories, kText),
               "give either --workers or --devices, not both");
}

}  // namespace
}  // namespace ll
