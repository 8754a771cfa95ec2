// Prompts in chunks (Step.prefill_only) over three `lingualinked worker` processes: whatever the
// chunk size, even one that does not divide the prompt, the generated tokens are those of the
// prompt sent as one step and of the single-device references.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

struct Cluster {
  std::unique_ptr<emulate::LocalCluster> workers;
  std::unique_ptr<model::Model> model;
  cluster::Pipeline pipeline;
};

// Three workers, each holding a segment, planned from their measured profiles (so that a chunk
// size of 0 is chosen from them).
Cluster start_cluster() {
  Cluster c;
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  for (int i = 1; i <= 3; ++i) o.devices.push_back({"w" + std::to_string(i)});
  o.model_dirs = {test::shared_data("models")};
  auto workers = emulate::LocalCluster::start(o);
  EXPECT_TRUE(workers.ok()) << workers.error();
  if (!workers.ok()) return c;
  c.workers = std::move(workers).value();
  auto m = model::Model::load(kStories);
  EXPECT_TRUE(m.ok()) << m.error();
  if (!m.ok()) return c;
  c.model = std::move(m).value();
  cluster::PipelineOptions p;
  p.head.workers = c.workers->addresses();
  p.head.keys = c.workers->head_keys();
  p.planning.planner = plan::Planner::Even;
  p.planning.profile.repetitions = 1;
  p.load.n_ctx = 256;
  p.load.kv_types = test::kReferenceKvTypes;  // the references' F32 cache
  auto pipeline = cluster::start_pipeline(kStories, *c.model, std::move(p));
  EXPECT_TRUE(pipeline.ok()) << pipeline.error();
  if (pipeline.ok()) c.pipeline = std::move(pipeline).value();
  return c;
}

std::vector<cluster::Generation> generate(Cluster& c, int64_t chunk, const std::vector<cluster::Request>& requests) {
  c.pipeline.head->set_prompt_chunk(chunk);
  return c.pipeline.head->generate(requests, [](size_t, const std::string&) {});
}

TEST(PromptChunksE2E, SampledTextAfterAPromptInChunksEqualsTheReference) {
  Cluster c = start_cluster();
  ASSERT_TRUE(c.pipeline.head);
  std::string expected;
  ASSERT_NO_FATAL_FAILURE(
      expected = test::read_text(test::shared_data("reference/stories260K/sample_t1_p0.95_s42_n200_prompt.txt")));
  cluster::Request r;
  r.prompt = "There was a big";  // BOS + 5 tokens
  r.n_predict = 200 - 6 + 1;     // run.c counts the 6 prompt positions in its 200 steps
  r.sampling = {.temp = 1.0f, .top_k = 0, .top_p = 0.95f, .min_p = 0, .repeat_penalty = 1, .seed = 42};
  // 0: chosen from the profiles; 4 leaves a last chunk of 2; 100: the whole prompt.
  for (int64_t chunk : {100, 1, 2, 4, 0}) {
    const auto gens = generate(c, chunk, {r});
    ASSERT_TRUE(gens[0].status.ok()) << "chunk " << chunk << ": " << gens[0].status.message();
    if (chunk > 0) {
      EXPECT_EQ(gens[0].prompt_chunk, std::min<int64_t>(chunk, 6));
    }
    EXPECT_EQ(r.prompt + gens[0].text, expected) << "chunk " << chunk;
  }
}

TEST(PromptChunksE2E, GreedyTokensAfterALongPromptInChunksEqualTheUnchunkedRun) {
  Cluster c = start_cluster();
  ASSERT_TRUE(c.pipeline.head);
  // The reference's tokens: greedy from BOS alone.
  cluster::Request from_bos;
  from_bos.n_predict = 200;
  from_bos.sampling.temp = 0;
  const auto reference = generate(c, 0, {from_bos});
  ASSERT_TRUE(reference[0].status.ok()) << reference[0].status.message();
  ASSERT_EQ(reference[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
  ASSERT_EQ(reference[0].tokens.size(), 200u);
  // Its first 45 tokens after BOS as a prompt of 46: the rest of the reference follows.
  constexpr size_t kPrompt = 45;
  cluster::Request r;
  r.prompt_tokens = reference[0].prompt_tokens;
  r.prompt_tokens.insert(r.prompt_tokens.end(), reference[0].tokens.begin(), reference[0].tokens.begin() + kPrompt);
  r.n_predict = 200 - kPrompt;
  r.sampling.temp = 0;
  const std::vector<int32_t> rest(reference[0].tokens.begin() + kPrompt, reference[0].tokens.end());
  for (int64_t chunk : {46, 7, 16, 1, 0}) {
    const auto gens = generate(c, chunk, {r});
    ASSERT_TRUE(gens[0].status.ok()) << "chunk " << chunk << ": " << gens[0].status.message();
    EXPECT_EQ(gens[0].tokens, rest) << "chunk " << chunk;
    if (chunk == 0) {
      EXPECT_GE(gens[0].prompt_chunk, 1);
    }
  }
}

TEST(PromptChunksE2E, TwoSequencesInChunksAtOnceEqualEachAloneInOneStep) {
  Cluster c = start_cluster();
  ASSERT_TRUE(c.pipeline.head);
  std::vector<cluster::Request> requests(2);
  const char* prompts[] = {"Lily and Ben went to the park with their mom", "The little dog"};
  for (int i = 0; i < 2; ++i) {
    requests[i].prompt = prompts[i];
    requests[i].n_predict = 80;
    requests[i].sampling = {.temp = 0.9f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f, .repeat_penalty = 1.1f,
                            .seed = static_cast<uint64_t>(100 + i)};
  }
  const auto together = generate(c, 3, requests);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(together[i].status.ok()) << together[i].status.message();
    EXPECT_EQ(together[i].prompt_chunk, 3);
    const auto alone = generate(c, 1000, {requests[i]});
    ASSERT_TRUE(alone[0].status.ok()) << alone[0].status.message();
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "sequence " << i;
    EXPECT_FALSE(together[i].tokens.empty());
  }
}

}  // namespace
}  // namespace ll
