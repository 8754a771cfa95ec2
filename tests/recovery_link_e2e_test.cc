// Recovery from a cut network link: every worker runs in a network namespace of its own, and
// worker b's link is cut in the middle of a generation. Nothing closes its connections, so the
// head learns of the loss from the heartbeats' timeout, then re-plans over a and c and gives the
// reference text. Needs root (namespaces); skipped without it.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "cluster/pipeline.h"
#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "emulated_devices.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

std::string reference() { return test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")); }

// b's link is cut once sequence 0 has streamed `at` pieces (0: before the prompt is sent).
void expect_cut_link_recovered(size_t sequences, size_t at) {
  if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  SCOPED_TRACE(fmt::format("{} sequence(s), b's link cut after {} tokens", sequences, at));
  auto workers = test::start_devices("a:bw=1gbit;b:bw=1gbit;c:bw=1gbit", {test::shared_data("models")});
  ASSERT_TRUE(workers);
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<std::string> log;
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.cuts = "attn[2],ffn[3]";
  p.load.n_ctx = 512;
  p.balance.enabled = false;
  p.balance.report = [&log](const std::string& line) { log.push_back(line); };
  auto pipeline = cluster::start_pipeline(kStories, **m, std::move(p));
  ASSERT_TRUE(pipeline.ok()) << pipeline.error();
  if (at == 0) {
    ASSERT_TRUE(workers->cut_link(1).ok());
  }
  size_t pieces = 0;
  cluster::Request greedy;
  greedy.n_predict = 200;
  greedy.sampling.temp = 0;
  auto gens = pipeline->head->generate(std::vector<cluster::Request>(sequences, greedy), [&](size_t i, const std::string&) {
    if (i == 0 && ++pieces == at) { ASSERT_TRUE(workers->cut_link(1).ok()); }
  });
  for (size_t i = 0; i < sequences; ++i) {
    ASSERT_TRUE(gens[i].status.ok()) << gens[i].status.message() << "\n" << fmt::format("{}", fmt::join(log, "\n"));
    EXPECT_EQ(gens[i].text, reference()) << "sequence " << i;
  }
  const auto& recoveries = pipeline->head->trace().recoveries;
  ASSERT_EQ(recoveries.size(), 1u) << fmt::format("{}", fmt::join(log, "\n"));
  EXPECT_EQ(recoveries[0].worker, 1u);
  EXPECT_NE(recoveries[0].why.find("heartbeat"), std::string::npos) << recoveries[0].why;
  // Found by the heartbeats: within their 2 s timeout (and a little) of the last message.
  EXPECT_LT(recoveries[0].detected_seconds - recoveries[0].last_heard_seconds, 3.0);
}

size_t random_step() {
  std::random_device rd;
  return 5 + rd() % 150;
}

TEST(RecoveryLinkE2E, ACutLinkAtARandomStepOfOneSequence) { expect_cut_link_recovered(1, random_step()); }

TEST(RecoveryLinkE2E, ACutLinkAtARandomStepOfThreeSequences) { expect_cut_link_recovered(3, random_step()); }

TEST(RecoveryLinkE2E, ALinkCutBeforeThePromptReachesIt) { expect_cut_link_recovered(2, 0); }

}  // namespace
}  // namespace ll
