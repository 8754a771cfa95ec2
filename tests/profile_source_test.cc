// Where a plan's profiles come from: a saved file as it is, what-if devices scaled from its one
// device, this machine measured when there is no file; and the workers' flags that exclude them.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "cluster/plan_profiles.h"
#include "graph/graph.h"
#include "model/model.h"
#include "plan/profile_source.h"
#include "test_data.h"

namespace ll::plan {
namespace {

ProfileSource source(const std::string& profiles_path, const std::string& what_if = "") {
  ProfileSource s;
  s.profiles_path = profiles_path;
  s.what_if = what_if;
  return s;
}

class ProfileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
    ASSERT_TRUE(m.ok()) << m.error();
    model_ = std::move(m).value();
    graph_ = graph::build_graph(*model_);
  }
  // Saves a cluster of `n` synthetic devices and a link between the first two.
  std::string save(size_t n) {
    profile::ClusterProfile c;
    for (size_t i = 0; i < n; ++i) {
      c.devices.push_back(profile::synthetic_profile(graph_, 1e9 * (i + 1), 1e9, 64u << 20, fmt::format("d{}", i)));
    }
    if (n > 1) c.links.push_back({"d0", "d1", 0.001, 1e8});
    const std::string path = test::temp_path(fmt::format("profiles-{}.json", n));
    EXPECT_TRUE(profile::write_json_file(path, profile::to_json(c)).ok());
    return path;
  }
  std::unique_ptr<model::Model> model_;
  graph::Graph graph_;
};

TEST_F(ProfileSourceTest, SavedProfilesAreUsedAsTheyAre) {
  bool measured = false;
  auto c = local_profiles(*model_, source(save(2)), [&](const std::string&) { measured = true; });
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_FALSE(measured);
  ASSERT_EQ(c->devices.size(), 2u);
  EXPECT_EQ(c->devices[1].name, "d1");
  ASSERT_EQ(c->links.size(), 1u);
  EXPECT_EQ(c->links[0].from, "d0");
  EXPECT_DOUBLE_EQ(c->links[0].bandwidth_bytes_per_s, 1e8);
}

TEST_F(ProfileSourceTest, WhatIfDevicesScaleTheSavedDevice) {
  const std::string path = save(1);
  auto c = local_profiles(*model_, source(path, "fast:speed=2;slow:speed=0.5,mem=1G"));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(c->devices.size(), 2u);
  EXPECT_TRUE(c->links.empty());
  const profile::DeviceProfile saved = profile::synthetic_profile(graph_, 1e9, 1e9, 64u << 20, "d0");
  EXPECT_EQ(c->devices[0].name, "fast");
  EXPECT_DOUBLE_EQ(c->devices[0].decode_seconds[1], saved.decode_seconds[1] / 2);
  EXPECT_EQ(c->devices[0].usable_memory_bytes, 64u << 20);
  EXPECT_DOUBLE_EQ(c->devices[1].decode_seconds[1], saved.decode_seconds[1] * 2);
  EXPECT_EQ(c->devices[1].usable_memory_bytes, 1ull << 30);
}

TEST_F(ProfileSourceTest, WhatIfNeedsOneSavedDevice) {
  const std::string path = save(2);
  auto c = local_profiles(*model_, source(path, "a:speed=1"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "--devices scales one device's profile, but " + path + " holds 2");
}

TEST_F(ProfileSourceTest, AMissingFileIsAnError) {
  auto c = local_profiles(*model_, source(test::temp_path("no-such-profiles.json")));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("no-such-profiles.json"), std::string::npos) << c.error();
}

TEST_F(ProfileSourceTest, WithoutAFileThisMachineIsMeasured) {
  std::string said;
  ProfileSource measure = source("", "x:speed=1;y:speed=1");
  measure.threads = 1;
  measure.repetitions = 1;
  auto c = local_profiles(*model_, measure, [&](const std::string& m) { said += m; });
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(said, "profiling this device with 1 thread(s)...");
  ASSERT_EQ(c->devices.size(), 2u);
  EXPECT_EQ(c->devices[0].threads, 1);
  ASSERT_EQ(c->devices[0].decode_seconds.size(), graph_.units.size());
  EXPECT_GT(c->devices[0].decode_seconds[1], 0);
  EXPECT_EQ(c->devices[0].decode_seconds, c->devices[1].decode_seconds);
}

TEST_F(ProfileSourceTest, WorkersExcludeSavedProfilesAndWhatIfDevices) {
  cluster::PlanProfileSource source;
  source.workers.workers = {"127.0.0.1:1"};
  source.local.profiles_path = save(1);
  auto c = cluster::plan_profiles("unused.gguf", *model_, source, 256);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), "--workers measures the devices: drop --profiles and --devices");
}

TEST_F(ProfileSourceTest, WithoutWorkersThePlanProfilesAreTheLocalOnes) {
  cluster::PlanProfileSource source;
  source.local.profiles_path = save(2);
  auto c = cluster::plan_profiles("unused.gguf", *model_, source, 256);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->devices.size(), 2u);
}

}  // namespace
}  // namespace ll::plan
