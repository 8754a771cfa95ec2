// Recovery from a lost worker end to end: `lingualinked worker` processes on loopback, a head in
// this process; a worker of the pipeline is killed or frozen in the middle of a generation (or
// before its prompt reaches it), and the head re-plans over the survivors, replays the
// sequences and gives the reference text, no token lost or repeated.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <random>
#include <thread>

#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

using emulate::LocalCluster;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

std::string reference() { return test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")); }

std::unique_ptr<LocalCluster> start_workers(size_t n) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  for (size_t i = 0; i < n; ++i) o.devices.push_back({std::string(1, static_cast<char>('a' + i))});
  o.model_dirs = {test::shared_data("models")};
  auto c = LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

cluster::Request greedy(int64_t n) {
  cluster::Request r;
  r.n_predict = n;
  r.sampling.temp = 0;
  return r;
}

struct Cluster {
  std::unique_ptr<LocalCluster> workers;
  std::unique_ptr<model::Model> model;
  cluster::Pipeline pipeline;
  std::vector<std::string> log;

  // Three workers a | b | c (stories260K's units 0..4 | 5..7 | 8..11), no balancing.
  bool start() {
    workers = start_workers(3);
    if (!workers) return false;
    auto m = model::Model::load(kStories);
    EXPECT_TRUE(m.ok()) << m.error();
    if (!m.ok()) return false;
    model = std::move(m).value();
    cluster::PipelineOptions p;
    p.head.workers = workers->addresses();
    p.head.keys = workers->head_keys();
    p.cuts = "attn[2],ffn[3]";
    p.load.n_ctx = 512;
    p.balance.enabled = false;
    p.balance.report = [this](const std::string& line) { log.push_back(line); };
    auto r = cluster::start_pipeline(kStories, *model, std::move(p));
    EXPECT_TRUE(r.ok()) << r.error();
    if (!r.ok()) return false;
    pipeline = std::move(r).value();
    return true;
  }
  std::string lines() const { return fmt::format("{}", fmt::join(log, "\n")); }
};

// `sequences` greedy sequences; once sequence 0 has streamed `at` pieces, `fault` is done to
// worker b. Every sequence gives the reference text, streamed exactly once.
void expect_recovery_keeps_the_reference(size_t sequences, int signal, size_t at) {
  SCOPED_TRACE(fmt::format("{} sequence(s), signal {} after {} tokens", sequences, signal, at));
  Cluster run;
  ASSERT_TRUE(run.start());
  const pid_t b = run.workers->pid(1);
  size_t pieces = 0;
  std::vector<std::string> streamed(sequences);
  auto gens = run.pipeline.head->generate(std::vector<cluster::Request>(sequences, greedy(200)),
                                          [&](size_t i, const std::string& s) {
                                            streamed[i] += s;
                                            if (i == 0 && ++pieces == at) kill(b, signal);
                                          });
  if (signal == SIGSTOP) kill(b, SIGCONT);
  for (size_t i = 0; i < sequences; ++i) {
    ASSERT_TRUE(gens[i].status.ok()) << gens[i].status.message() << "\n" << run.lines();
    EXPECT_EQ(gens[i].text, reference()) << "sequence " << i;
    EXPECT_EQ(streamed[i], reference()) << "sequence " << i;
  }
  const auto& recoveries = run.pipeline.head->trace().recoveries;
  ASSERT_EQ(recoveries.size(), 1u) << run.lines();
  const cluster::RecoveryEvent& r = recoveries[0];
  EXPECT_FALSE(r.failed) << r.error;
  EXPECT_EQ(r.worker, 1u);
  EXPECT_EQ(r.sequences, sequences);
  EXPECT_LE(r.last_heard_seconds, r.detected_seconds);
  EXPECT_LE(r.detected_seconds, r.planned_seconds);
  EXPECT_LE(r.planned_seconds, r.loaded_seconds);
  EXPECT_LT(r.loaded_seconds, r.resumed_seconds);
  EXPECT_TRUE(run.pipeline.head->segments()[1].empty()) << "b holds nothing after it was lost";
}

size_t random_step() {
  std::random_device rd;
  return 5 + rd() % 150;
}

TEST(RecoveryE2E, AKilledWorkerAtARandomStepOfOneSequence) {
  expect_recovery_keeps_the_reference(1, SIGKILL, random_step());
}

TEST(RecoveryE2E, AKilledWorkerAtARandomStepOfThreeSequences) {
  expect_recovery_keeps_the_reference(3, SIGKILL, random_step());
}

// Frozen: its link stays open until the heartbeats time out.
TEST(RecoveryE2E, AFrozenWorkerAtARandomStepOfOneSequence) {
  expect_recovery_keeps_the_reference(1, SIGSTOP, random_step());
}

TEST(RecoveryE2E, AFrozenWorkerAtARandomStepOfThreeSequences) {
  expect_recovery_keeps_the_reference(3, SIGSTOP, random_step());
}

// Killed or frozen before the prompt reaches it: the prompt is in the pipeline when the loss is
// found, and it is replayed.
void expect_prompt_replayed(int signal) {
  SCOPED_TRACE(fmt::format("signal {} before the prompt", signal));
  Cluster run;
  ASSERT_TRUE(run.start());
  const pid_t b = run.workers->pid(1);
  kill(b, signal);
  auto gens = run.pipeline.head->generate({greedy(200), greedy(200)}, [](size_t, const std::string&) {});
  if (signal == SIGSTOP) kill(b, SIGCONT);
  for (const auto& g : gens) {
    ASSERT_TRUE(g.status.ok()) << g.status.message() << "\n" << run.lines();
    EXPECT_EQ(g.text, reference());
  }
  ASSERT_EQ(run.pipeline.head->trace().recoveries.size(), 1u) << run.lines();
}

TEST(RecoveryE2E, AWorkerKilledBeforeThePromptReachesIt) { expect_prompt_replayed(SIGKILL); }

TEST(RecoveryE2E, AWorkerFrozenBeforeThePromptReachesIt) { expect_prompt_replayed(SIGSTOP); }

// Sampled sequences: the replay tells the last stage how many tokens each sequence had drawn,
// so the recovered run draws what the undisturbed one drew.
TEST(RecoveryE2E, SampledSequencesContinueTheirDrawsAfterARecovery) {
  Cluster run;
  ASSERT_TRUE(run.start());
  text::SamplerParams sampling{.temp = 0.9f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f, .repeat_penalty = 1.1f,
                               .repeat_last_n = 64, .seed = 42};
  const auto requests = cluster::parallel_requests("Once upon a time", 150, sampling, 3);
  auto undisturbed = run.pipeline.head->generate(requests, [](size_t, const std::string&) {});
  size_t pieces = 0;
  auto recovered = run.pipeline.head->generate(requests, [&](size_t i, const std::string&) {
    if (i == 0 && ++pieces == 40) { ASSERT_TRUE(run.workers->kill(1).ok()); }
  });
  ASSERT_EQ(run.pipeline.head->trace().recoveries.size(), 1u) << run.lines();
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(undisturbed[i].status.ok()) << undisturbed[i].status.message();
    ASSERT_TRUE(recovered[i].status.ok()) << recovered[i].status.message() << "\n" << run.lines();
    EXPECT_EQ(recovered[i].tokens, undisturbed[i].tokens) << "sequence " << i;
  }
}

// Killed in one run and restarted with its key: the next run takes it back (a rejoin), and a
// forced move gives it its units again.
TEST(RecoveryE2E, ARestartedWorkerRejoinsAndCanHoldUnitsAgain) {
  Cluster run;
  ASSERT_TRUE(run.start());
  const std::vector<model::UnitRange> original = run.pipeline.head->segments();
  size_t pieces = 0;
  auto first = run.pipeline.head->generate({greedy(200)}, [&](size_t, const std::string&) {
    if (++pieces == 20) { ASSERT_TRUE(run.workers->kill(1).ok()); }
  });
  ASSERT_TRUE(first[0].status.ok()) << first[0].status.message() << "\n" << run.lines();
  EXPECT_EQ(first[0].text, reference());
  ASSERT_TRUE(run.workers->restart(1).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the first rejoin attempt's time
  cluster::BalanceOptions back;
  back.enabled = false;
  back.forced = {{20, original}};
  back.report = [&run](const std::string& line) { run.log.push_back(line); };
  run.pipeline.head->set_balancing(back, std::nullopt);
  auto second = run.pipeline.head->generate({greedy(200), greedy(200)}, [](size_t, const std::string&) {});
  for (const auto& g : second) {
    ASSERT_TRUE(g.status.ok()) << g.status.message() << "\n" << run.lines();
    EXPECT_EQ(g.text, reference());
  }
  const auto& trace = run.pipeline.head->trace();
  ASSERT_EQ(trace.rejoins.size(), 1u) << run.lines();
  EXPECT_EQ(trace.rejoins[0].worker, 1u);
  ASSERT_EQ(trace.rebalances.size(), 1u) << run.lines();
  EXPECT_FALSE(trace.rebalances[0].aborted) << trace.rebalances[0].why;
  EXPECT_EQ(run.pipeline.head->segments()[1].begin, original[1].begin);
  EXPECT_EQ(run.pipeline.head->segments()[1].end, original[1].end);
}

// Restarted with a key the head does not know: it is never taken back.
TEST(RecoveryE2E, ARestartedWorkerWithAnotherKeyIsNotTrusted) {
  Cluster run;
  ASSERT_TRUE(run.start());
  size_t pieces = 0;
  auto first = run.pipeline.head->generate({greedy(200)}, [&](size_t, const std::string&) {
    if (++pieces == 20) { ASSERT_TRUE(run.workers->kill(1).ok()); }
  });
  ASSERT_TRUE(first[0].status.ok()) << first[0].status.message() << "\n" << run.lines();
  ASSERT_TRUE(run.workers->restart(1, /*new_key=*/true).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the first rejoin attempt's time
  auto second = run.pipeline.head->generate({greedy(200)}, [](size_t, const std::string&) {});
  ASSERT_TRUE(second[0].status.ok()) << second[0].status.message();
  EXPECT_EQ(second[0].text, reference());
  EXPECT_TRUE(run.pipeline.head->trace().rejoins.empty()) << run.lines();
  EXPECT_TRUE(run.pipeline.head->segments()[1].empty());
}

// The devices' memory (as their profiles say) holds the model on three of them but not on two:
// losing one ends the requests with an error that says so, keeping the text so far.
TEST(RecoveryE2E, SurvivorsTooSmallForTheModelEndTheRequestsSayingSo) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  cluster::HeadOptions head;
  head.workers = workers->addresses();
  head.keys = workers->head_keys();
  profile::ClusterProfile profile;
  {
    auto measuring = cluster::Head::connect(head);
    ASSERT_TRUE(measuring.ok()) << measuring.error();
    auto measured = (*measuring)->profile(kStories, cluster::ProfileOptions{.repetitions = 1});
    ASSERT_TRUE(measured.ok()) << measured.error();
    profile = std::move(measured).value();
  }
  cluster::PlanningOptions planning;
  planning.planner = plan::Planner::Dp;
  constexpr int64_t kCtx = 512;
  // The least memory per device with which three hold the model (in steps of 1%).
  auto with_memory = [&](uint64_t bytes, size_t devices) {
    profile::ClusterProfile p = profile;
    p.devices.resize(devices);
    for (auto& d : p.devices) d.usable_memory_bytes = bytes;
    return p;
  };
  const uint64_t total = profile.devices[0].usable_memory_bytes;
  uint64_t enough = 0;
  for (uint64_t b = 64 << 10; b < total; b += b / 100 + 1) {
    if (cluster::plan_pipeline(**m, with_memory(b, 3), planning, kCtx).ok()) {
      enough = b;
      break;
    }
  }
  ASSERT_GT(enough, 0u);
  ASSERT_FALSE(cluster::plan_pipeline(**m, with_memory(enough, 2), planning, kCtx).ok()) << "two devices hold it too";
  const profile::ClusterProfile small = with_memory(enough, 3);
  auto plan = cluster::plan_pipeline(**m, small, planning, kCtx);
  ASSERT_TRUE(plan.ok()) << plan.error();
  auto inputs = cluster::balance_planning(**m, small, planning, kCtx);
  ASSERT_TRUE(inputs.ok()) << inputs.error();
  std::vector<std::string> log;
  cluster::BalanceOptions balance;
  balance.enabled = false;
  balance.report = [&log](const std::string& line) { log.push_back(line); };
  cluster::SegmentLoadOptions load;
  load.n_ctx = kCtx;
  auto pipeline = cluster::start_planned_pipeline(kStories, **m, head, *plan, load, balance, *inputs);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error();
  size_t victim = 0;
  while (pipeline->head->segments()[victim].empty()) ++victim;
  size_t pieces = 0;
  auto gens = pipeline->head->generate({greedy(200)}, [&](size_t, const std::string&) {
    if (++pieces == 20) { ASSERT_TRUE(workers->kill(victim).ok()); }
  });
  ASSERT_FALSE(gens[0].status.ok()) << fmt::format("{}", fmt::join(log, "\n"));
  EXPECT_NE(gens[0].status.message().find("cannot hold the model"), std::string::npos) << gens[0].status.message();
  EXPECT_GE(gens[0].tokens.size(), 20u);
  EXPECT_EQ(reference().rfind(gens[0].text, 0), 0u) << "the text so far is the reference's beginning";
  const auto& recoveries = pipeline->head->trace().recoveries;
  ASSERT_EQ(recoveries.size(), 1u);
  EXPECT_TRUE(recoveries[0].failed);
}

// Without recovery a lost worker ends every request with an error naming it, keeping the text so far.
TEST(RecoveryE2E, WithoutRecoveryALostWorkerEndsTheRequestsNamingIt) {
  Cluster run;
  ASSERT_TRUE(run.start());
  cluster::BalanceOptions off;
  off.enabled = false;
  off.recover = false;
  run.pipeline.head->set_balancing(off, std::nullopt);
  const pid_t c = run.workers->pid(2);
  size_t pieces = 0;
  auto gens = run.pipeline.head->generate({greedy(200)}, [&](size_t, const std::string&) {
    if (++pieces == 20) kill(c, SIGKILL);
  });
  ASSERT_FALSE(gens[0].status.ok());
  EXPECT_NE(gens[0].status.message().find("worker 3 'c'"), std::string::npos) << gens[0].status.message();
  EXPECT_GE(gens[0].tokens.size(), 20u);
  EXPECT_EQ(reference().rfind(gens[0].text, 0), 0u) << "the text so far is the reference's beginning";
}

}  // namespace
}  // namespace ll
