// A cluster of two architectures: an x86-64 worker (this build's command) and an aarch64 worker
// (the self-contained bundle of tools/cross_aarch64.sh, run by LL_AARCH64_EMULATOR, e.g.
// qemu-aarch64) on loopback, profiled, planned and driven by a head in this process, against the
// single-device reference text. Built only when the build is configured with LL_AARCH64_BUNDLE.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

TEST(MixedArchE2E, X86AndAarch64WorkersProfiledPlannedAndGiveTheReferenceText) {
  // The bundle's launcher starts its loader through the emulator; the worker inherits this.
  setenv("LINGUALINKED_EMULATOR", LL_AARCH64_EMULATOR, 1);
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{"x86"}, {"arm"}};
  o.cli_paths = {"", LL_AARCH64_BUNDLE "/lingualinked"};
  o.model_dirs = {test::shared_data("models")};
  o.start_timeout = std::chrono::seconds(60);  // an emulated start is slower
  auto workers = emulate::LocalCluster::start(o);
  ASSERT_TRUE(workers.ok()) << workers.error();

  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  cluster::HeadOptions head;
  head.workers = (*workers)->addresses();
  head.keys = (*workers)->head_keys();
  cluster::PlanningOptions planning;
  planning.profile.repetitions = 2;
  auto profile = cluster::profile_workers(kStories, head, planning, 512, {});
  ASSERT_TRUE(profile.ok()) << profile.error();
  ASSERT_EQ(profile->devices.size(), 2u);
  // Each worker measured itself on its own SIMD target, every unit of the model.
  const auto& x86 = profile->devices[0];
  const auto& arm = profile->devices[1];
  EXPECT_EQ(arm.simd.find("NEON") == 0 || arm.simd.find("SVE") == 0, true) << arm.simd;
  EXPECT_EQ(x86.simd.find("NEON") == std::string::npos && x86.simd.find("SVE") == std::string::npos, true) << x86.simd;
  for (const auto& d : profile->devices) {
    EXPECT_FALSE(d.decode_seconds.empty()) << d.name;
    for (double t : d.decode_seconds) EXPECT_GT(t, 0) << d.name;
    EXPECT_GT(d.usable_memory_bytes, 0u) << d.name;
  }
  ASSERT_EQ(profile->links.size(), 2u);  // x86 -> arm and arm -> x86

  // Even placement, so that both architectures hold layers whatever the emulated speed.
  planning.planner = plan::Planner::Even;
  auto plan = cluster::plan_pipeline(*m.value(), profile.value(), planning, 512);
  ASSERT_TRUE(plan.ok()) << plan.error();
  for (const auto& d : plan->devices) EXPECT_FALSE(d.units.empty());
  cluster::SegmentLoadOptions load;
  load.n_ctx = 512;
  auto p = cluster::start_planned_pipeline(kStories, *m.value(), head, plan.value(), load);
  ASSERT_TRUE(p.ok()) << p.error();
  cluster::Request r;
  r.n_predict = 200;
  r.sampling.temp = 0;
  auto gens = p->head->generate({r}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

}  // namespace
}  // namespace ll
