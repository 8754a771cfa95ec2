// Every architecture through the cluster: three `lingualinked worker` processes, each holding a
// third of a tiny random-weight model, generate llama.cpp's 32 greedy tokens
// (../shared/data/reference/arch-tiny) from its prompt ids, and `run --workers` prints its text.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cluster/pipeline.h"
#include "emulated_devices.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

struct Case {
  std::string arch, file;
  std::string prompt = "p1_en";
};

// Gemma 2's p1_en has a near-tie (a top-2 margin of 0.002) at its 7th token: its p2 has none.
const Case kCases[] = {{"llama", "tiny-random-llama3.gguf"},
                       {"qwen2", "tiny-random-qwen2.gguf"},
                       {"phi3", "tiny-random-phi3.gguf"},
                       {"gemma2", "tiny-random-gemma2.gguf", "p2_nonascii"},
                       {"bloom", "tiny-random-bloom.gguf"}};

class ArchCluster : public ::testing::TestWithParam<Case> {};

TEST_P(ArchCluster, ThreeWorkersGenerateLlamaCppsGreedyTokens) {
  const Case& c = GetParam();
  const std::string path = test::shared_data("models/arch-tiny/" + c.arch + "/" + c.file);
  std::string text;
  ASSERT_NO_FATAL_FAILURE(text = test::read_text(test::shared_data("reference/arch-tiny/" + c.arch + "/" + c.prompt + ".json")));
  const auto reference = nlohmann::json::parse(text);
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error();
  auto workers = test::start_devices("a;b;c", {test::shared_data("models")});
  ASSERT_TRUE(workers);

  cluster::PipelineOptions o;
  o.head.workers = workers->addresses();
  o.head.keys = workers->head_keys();
  // Three segments that cut inside a layer and between layers.
  const int64_t n_units = model::unit_count(m.value()->hparams());
  o.cuts = fmt::format("4,{}", n_units - 3);
  o.load.n_ctx = 256;
  auto p = cluster::start_pipeline(path, *m.value(), std::move(o));
  ASSERT_TRUE(p.ok()) << p.error();

  cluster::Request rq;
  rq.prompt_tokens = reference["prompt_ids"].get<std::vector<int32_t>>();
  rq.n_predict = 32;
  rq.ignore_eos = true;  // llama.cpp's reference does not stop at an end-of-generation token
  rq.sampling.temp = 0;
  auto gens = p.value().head->generate({rq}, [](size_t, const std::string&) {});
  ASSERT_EQ(gens.size(), 1u);
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].tokens, reference["greedy_ids"].get<std::vector<int32_t>>());
}

INSTANTIATE_TEST_SUITE_P(Models, ArchCluster, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.arch; });

}  // namespace
}  // namespace ll
