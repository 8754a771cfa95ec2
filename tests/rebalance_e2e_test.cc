// The runtime balancer end to end: `lingualinked worker` processes on loopback, a head in this
// process that moves units (and their KV caches and samplers) between them in the middle of a
// generation, against the single-device reference text.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "cluster/pipeline.h"
#include "core/thread_pool.h"
#include "emulate/local_cluster.h"
#include "exec/generate.h"
#include "exec/segment_executor.h"
#include "model/model.h"
#include "model/synth.h"
#include "text/tokenizer.h"
#include "test_data.h"

namespace ll {
namespace {

using emulate::LocalCluster;
using model::UnitRange;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

std::string reference() { return test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")); }

std::unique_ptr<LocalCluster> start_workers(size_t n, std::vector<std::string> more_model_dirs = {}) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  for (size_t i = 0; i < n; ++i) o.devices.push_back({std::string(1, static_cast<char>('a' + i))});
  o.model_dirs = {test::shared_data("models")};
  o.model_dirs.insert(o.model_dirs.end(), more_model_dirs.begin(), more_model_dirs.end());
  auto c = LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

// stories260K has 12 units: embed, attn[0] ffn[0] .. attn[4] ffn[4], head. attn[l] is unit
// 2l + 1, ffn[l] unit 2l + 2: a cut before an attention unit falls between layers, one before
// an FFN unit inside a layer.
cluster::BalanceOptions forced(std::vector<cluster::BalanceOptions::Forced> moves, std::vector<std::string>* log) {
  cluster::BalanceOptions o;
  o.enabled = false;
  o.forced = std::move(moves);
  o.report = [log](const std::string& line) { log->push_back(line); };
  return o;
}

// Three workers; the cuts move between layers and inside them, attention units with their
// caches go both ways, the head unit (and its sampler) moves, a worker leaves the pipeline and
// comes back. `scale`: decode tokens per sequence in flight.
std::vector<cluster::BalanceOptions::Forced> tour(uint64_t scale) {
  return {
      {20 * scale, {{0, 3}, {3, 10}, {10, 12}}},   // attn[1]..ffn[1] a -> b; ffn[3]..attn[4] c -> b
      {60 * scale, {{0, 6}, {6, 7}, {7, 12}}},     // b keeps ffn[2] alone
      {100 * scale, {{0, 6}, {6, 11}, {11, 12}}},  // c holds only the head
      {130 * scale, {{0, 4}, {4, 4}, {4, 12}}},    // b holds nothing; the head moves c -> c stays last
      {160 * scale, {{0, 2}, {2, 9}, {9, 12}}},    // b joins again in the middle
  };
}

cluster::Pipeline start(LocalCluster& workers, const model::Model& m, const cluster::BalanceOptions& balance,
                        bool send_shards = false) {
  cluster::PipelineOptions p;
  p.head.workers = workers.addresses();
  p.head.keys = workers.head_keys();
  p.cuts = "attn[2],ffn[3]";  // units 0..4 | 5..7 | 8..11
  p.load.n_ctx = 512;
  p.load.send_shards = send_shards;
  p.balance = balance;
  auto r = cluster::start_pipeline(kStories, m, std::move(p));
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(r).value() : cluster::Pipeline{};
}

cluster::Request greedy(int64_t n) {
  cluster::Request r;
  r.n_predict = n;
  r.sampling.temp = 0;
  return r;
}

void expect_all_switched(const cluster::Head& head, size_t n, const std::vector<std::string>& log) {
  const auto& events = head.trace().rebalances;
  ASSERT_EQ(events.size(), n) << fmt::format("{}", fmt::join(log, "\n"));
  for (const auto& e : events) {
    EXPECT_FALSE(e.aborted) << e.summary << ": " << e.why;
    EXPECT_GE(e.switched_seconds, e.decided_seconds);
  }
  EXPECT_GT(events[0].kv_bytes, 0u);  // attention units moved with their caches
  const std::vector<UnitRange> last = tour(1).back().ranges;
  for (size_t w = 0; w < 3; ++w) {
    EXPECT_EQ(head.segments()[w].begin, last[w].begin);
    EXPECT_EQ(head.segments()[w].end, last[w].end);
  }
}

// The tour of forced moves with `sequences` greedy sequences in flight: every one gives the
// reference text (streamed as it came, too), and every move switched.
void expect_tour_keeps_the_reference(size_t sequences, bool send_shards) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<std::string> log;
  auto p = start(*workers, **m, forced(tour(sequences), &log), send_shards);
  ASSERT_TRUE(p.head);
  std::vector<std::string> streamed(sequences);
  auto gens = p.head->generate(std::vector<cluster::Request>(sequences, greedy(200)),
                               [&](size_t i, const std::string& s) { streamed[i] += s; });
  for (size_t i = 0; i < sequences; ++i) {
    ASSERT_TRUE(gens[i].status.ok()) << gens[i].status.message();
    EXPECT_EQ(gens[i].text, reference()) << "sequence " << i;
    EXPECT_EQ(streamed[i], reference()) << "sequence " << i;
  }
  expect_all_switched(*p.head, 5, log);
  if (send_shards) {
    EXPECT_GT(p.head->trace().rebalances[0].weight_bytes, 0u);
  }
}

TEST(RebalanceE2E, ForcedMovesInTheMiddleOfOneSequenceKeepTheReferenceText) {
  expect_tour_keeps_the_reference(1, /*send_shards=*/false);
}

TEST(RebalanceE2E, ForcedMovesWithThreeSequencesInFlightKeepTheReferenceText) {
  expect_tour_keeps_the_reference(3, /*send_shards=*/false);
}

TEST(RebalanceE2E, ForcedMovesWithStreamedShardsKeepTheReferenceText) {
  expect_tour_keeps_the_reference(3, /*send_shards=*/true);
}

// `balance`, which also kills `victim` as soon as a rebalance starts preparing.
cluster::BalanceOptions killing_when_preparing(cluster::BalanceOptions balance, pid_t victim) {
  balance.report = [report = balance.report, victim](const std::string& line) {
    report(line);
    if (line.find("preparing") != std::string::npos) kill(victim, SIGKILL);
  };
  return balance;
}

// A worker that was to join the pipeline dies while it prepares: the attempt is given up and
// the generation goes on, unchanged, over the old pipeline.
TEST(RebalanceE2E, AJoiningWorkerDyingDuringTheMigrationLeavesTheGenerationIntact) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<std::string> log;
  const auto balance = killing_when_preparing(forced({{10, {{0, 6}, {6, 9}, {9, 12}}}}, &log), workers->pid(1));
  cluster::HeadOptions head;
  head.workers = workers->addresses();
  head.keys = workers->head_keys();
  cluster::SegmentLoadOptions load;
  load.n_ctx = 512;
  // b holds nothing at first: a profile-free placement over a and c.
  plan::Plan plan;
  plan.devices.resize(3);
  plan.devices[0].units = {0, 6};
  plan.devices[2].units = {6, 12};
  auto pipeline = cluster::start_planned_pipeline(kStories, **m, head, plan, load, balance);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error();
  auto gens = pipeline->head->generate({greedy(200)}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, reference());
  const auto& events = pipeline->head->trace().rebalances;
  ASSERT_EQ(events.size(), 1u) << fmt::format("{}", fmt::join(log, "\n"));
  EXPECT_TRUE(events[0].aborted);
  EXPECT_NE(events[0].why.find("lost"), std::string::npos) << events[0].why;
  EXPECT_EQ(pipeline->head->segments()[1].empty(), true);
}

// A worker of the pipeline dies while the migration prepares: the attempt is given up, the head
// recovers over the other two and every sequence still gives the reference text.
TEST(RebalanceE2E, APipelineWorkerDyingDuringTheMigrationIsRecoveredFrom) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  std::vector<std::string> log;
  auto p = start(*workers, **m, killing_when_preparing(forced({{30, {{0, 3}, {3, 10}, {10, 12}}}}, &log), workers->pid(2)));
  ASSERT_TRUE(p.head);
  auto gens = p.head->generate({greedy(200), greedy(200)}, [](size_t, const std::string&) {});
  for (const auto& g : gens) {
    ASSERT_TRUE(g.status.ok()) << g.status.message() << "\n" << fmt::format("{}", fmt::join(log, "\n"));
    EXPECT_EQ(g.text, reference());
  }
  const auto& trace = p.head->trace();
  ASSERT_EQ(trace.rebalances.size(), 1u) << fmt::format("{}", fmt::join(log, "\n"));
  EXPECT_TRUE(trace.rebalances[0].aborted);
  ASSERT_EQ(trace.recoveries.size(), 1u);
  EXPECT_EQ(trace.recoveries[0].worker, 2u);
  EXPECT_TRUE(p.head->segments()[2].empty());
}

// A model whose decode steps take milliseconds (stories260K's take microseconds: a run of
// hundreds of tokens ends before the balancer's first full window of measurements).
std::string steady_model() {
  const std::string path = test::temp_path("rebalance-test-8l-f32.gguf");
  if (!std::filesystem::exists(path)) {
    model::SynthOptions o{.preset = "test-8l", .type = "f32",
                          .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
    ThreadPool pool(2);
    Status s = model::write_synthetic_model(o, path, pool);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return path;
}

// A steady cluster: profiled and planned, the balancer measures every token and re-plans every
// 250 ms over seconds of generation, and never finds a placement worth a switch.
TEST(RebalanceE2E, ASteadyClusterNeverSwitches) {
  const std::string path = steady_model();
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.ok()) << m.error();
  constexpr int64_t kTokens = 300;
  exec::SegmentExecutor whole(**m, model::all_units((*m)->hparams()), {.n_ctx = 512, .n_threads = 1});
  auto tokenizer = text::Tokenizer::create((*m)->vocab());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error();
  exec::GenerateOptions g;
  g.prompt = "Once upon a time";
  g.n_predict = kTokens;
  g.sampling.temp = 0;
  auto expected = exec::generate(whole, *tokenizer, g, [](const std::string&) {});
  ASSERT_TRUE(expected.ok()) << expected.error();

  auto workers = start_workers(3, {std::filesystem::path(path).parent_path().string()});
  ASSERT_TRUE(workers);
  std::vector<std::string> log;
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.planning.planner = plan::Planner::Milp;
  p.load.n_ctx = 512;
  p.balance.enabled = true;
  p.balance.report = [&log](const std::string& line) { log.push_back(line); };
  auto pipeline = cluster::start_pipeline(path, **m, std::move(p));
  ASSERT_TRUE(pipeline.ok()) << pipeline.error();
  cluster::Head& head = *pipeline->head;
  for (size_t n : {1, 3}) {
    cluster::Request r = greedy(kTokens / static_cast<int64_t>(n));
    r.prompt = g.prompt;
    auto gens = head.generate(std::vector<cluster::Request>(n, r), [](size_t, const std::string&) {});
    for (size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(gens[i].status.ok()) << gens[i].status.message();
      EXPECT_EQ(gens[i].tokens, std::vector<int32_t>(expected->tokens.begin(), expected->tokens.begin() + r.n_predict))
          << n << " sequences, sequence " << i;
    }
    EXPECT_TRUE(head.trace().rebalances.empty()) << n << " sequences:\n" << fmt::format("{}", fmt::join(log, "\n"));
    log.clear();
  }
}

}  // namespace
}  // namespace ll
