// `lingualinked bench`: a prompt and a generation test on stories260K, as JSON. Each generation
// row carries the bandwidth measured between its own repetitions and its fraction of it; the
// resident memory is the model's, not the bandwidth buffer's (1 GiB, freed after each pass).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_run.h"

namespace ll {
namespace {

TEST(BenchE2E, GenerationIsMeasuredAgainstTheBandwidthMeasuredBetweenItsRepetitions) {
  const std::string model = test::shared_data("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(test::exists(model));
  const test::CliOutcome o = test::run_cli("bench -m '" + model + "' -p 16 -n 8 -t 1 -r 2 -o json");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto rows = nlohmann::json::parse(o.out);
  ASSERT_EQ(rows.size(), 2u) << o.out;
  const auto& pp = rows[0];
  const auto& tg = rows[1];
  EXPECT_EQ(pp.at("test"), "pp16");
  EXPECT_EQ(tg.at("test"), "tg8");
  EXPECT_TRUE(pp.at("bandwidth_fraction").is_null());
  for (const auto& row : rows) {
    EXPECT_GT(row.at("tokens_per_second").get<double>(), 0.0) << row;
    EXPECT_GT(row.at("memory_bandwidth").get<double>(), 1e8) << row;
    EXPECT_LT(row.at("resident_bytes").get<double>(), 256.0 * (1 << 20)) << row;
  }
  const double expected = tg.at("bytes_per_token").get<double>() * tg.at("tokens_per_second").get<double>() /
                          tg.at("memory_bandwidth").get<double>();
  EXPECT_NEAR(tg.at("bandwidth_fraction").get<double>(), expected, 1e-9 * expected);
  EXPECT_NE(o.err.find("threads 1: tg8 x 2"), std::string::npos) << o.err;
}

// Only prompt rows use the bandwidth measured before the tests, so a run without them skips it.
TEST(BenchE2E, AGenerationOnlyRunMeasuresNoBandwidthBeforeItsTests) {
  const std::string model = test::shared_data("models/stories260K/stories260K.gguf");
  ASSERT_TRUE(test::exists(model));
  const test::CliOutcome o = test::run_cli("bench -m '" + model + "' -p 0 -n 8 -t 1 -r 1 -o json");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto rows = nlohmann::json::parse(o.out);
  ASSERT_EQ(rows.size(), 1u) << o.out;
  EXPECT_GT(rows[0].at("memory_bandwidth").get<double>(), 1e8) << rows[0];
  EXPECT_EQ(o.err.find("measuring memory bandwidth"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("threads 1: tg8 x 1"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace ll
