// What a head and a worker remember in the configuration directory: owner-only files, a key
// file that others may read refused, paired devices and trusted heads kept and forgotten.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "cluster/remembered.h"
#include "test_data.h"

namespace ll::cluster {
namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// XDG_CONFIG_HOME pointed at a fresh directory for one test.
class Remembered : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    ASSERT_EQ(setenv("XDG_CONFIG_HOME", root_.c_str(), 1), 0);
    auto d = config_dir();
    ASSERT_TRUE(d.ok()) << d.error();
    dir_ = d.value();
  }
  void TearDown() override { unsetenv("XDG_CONFIG_HOME"); }
  std::string root_, dir_;
};

TEST_F(Remembered, ConfigDirFollowsXdgThenHome) {
  EXPECT_EQ(dir_, root_ + "/lingualinked");
  setenv("XDG_CONFIG_HOME", "relative/dir", 1);
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    EXPECT_EQ(config_dir().value(), std::string(home) + "/.config/lingualinked");
  }
}

TEST_F(Remembered, KeysAreCreatedOwnerOnlyAndKept) {
  auto created = load_or_create_keypair(dir_, kHeadKeyFile);
  ASSERT_TRUE(created.ok()) << created.error();
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(mode_of(dir_ + "/head.key"), 0600u);
  auto again = load_or_create_keypair(dir_, kHeadKeyFile);
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->public_key, created->public_key);
}

TEST_F(Remembered, AKeyFileOthersMayReadIsRefusedLikeSsh) {
  ASSERT_TRUE(load_or_create_keypair(dir_, kWorkerKeyFile).ok());
  ASSERT_EQ(::chmod((dir_ + "/worker.key").c_str(), 0644), 0);
  auto refused = load_or_create_keypair(dir_, kWorkerKeyFile);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("permissions 0644 are too open"), std::string::npos) << refused.error();
  EXPECT_NE(refused.error().find("chmod 600"), std::string::npos) << refused.error();
}

PairedDevice device(const std::string& name) {
  PairedDevice d;
  d.name = name;
  d.public_key = net::generate_keypair().public_key;
  d.signing_key = std::string(32, 'k');
  d.endpoint = "tcp://10.0.0.2:7070";
  d.threads = 4;
  d.memory_limit = uint64_t{3} << 30;
  d.tokens_per_second = 12.5;
  d.paired_at = 1700000000;
  return d;
}

TEST_F(Remembered, PairedDevicesAreKeptRenamedWhenTheirNamesClashAndForgotten) {
  auto empty = load_paired_devices(dir_);
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_TRUE(empty->empty());
  const PairedDevice a = device("phone"), b = device("phone");
  EXPECT_EQ(remember_device(dir_, a).value(), "phone");
  EXPECT_EQ(remember_device(dir_, b).value(), "phone-2");
  EXPECT_EQ(mode_of(dir_ + "/devices.json"), 0600u);
  // The same key paired again replaces its entry.
  PairedDevice a_again = a;
  a_again.endpoint = "tcp://10.0.0.9:7070";
  EXPECT_EQ(remember_device(dir_, a_again).value(), "phone");
  auto loaded = load_paired_devices(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  ASSERT_EQ(loaded->size(), 2u);
  const PairedDevice& back = loaded->at(1);
  EXPECT_EQ(back.public_key, a.public_key);
  EXPECT_EQ(back.signing_key, a.signing_key);
  EXPECT_EQ(back.endpoint, "tcp://10.0.0.9:7070");
  EXPECT_EQ(back.threads, 4u);
  EXPECT_EQ(back.memory_limit, uint64_t{3} << 30);
  EXPECT_DOUBLE_EQ(back.tokens_per_second, 12.5);

  ASSERT_TRUE(forget_device(dir_, "phone-2").ok());
  const Status missing = forget_device(dir_, "tablet");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no paired device is called tablet (paired: phone)"), std::string::npos)
      << missing.message();
  EXPECT_EQ(load_paired_devices(dir_)->size(), 1u);
}

TEST_F(Remembered, AMalformedDevicesFileIsNamed) {
  ASSERT_TRUE(save_paired_devices(dir_, {}).ok());
  FILE* f = std::fopen((dir_ + "/devices.json").c_str(), "w");
  std::fputs("{\"devices\": [{\"name\": \"x\"}]}", f);
  std::fclose(f);
  auto loaded = load_paired_devices(dir_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().find("devices.json"), std::string::npos) << loaded.error();
}

TEST_F(Remembered, TrustedHeadsAreAddedOnce) {
  const std::string head = net::generate_keypair().public_key;
  EXPECT_TRUE(load_trusted_heads(dir_)->empty());
  ASSERT_TRUE(add_trusted_head(dir_, head, "laptop").ok());
  ASSERT_TRUE(add_trusted_head(dir_, head, "laptop").ok());
  EXPECT_EQ(mode_of(dir_ + "/trusted_heads"), 0600u);
  auto heads = load_trusted_heads(dir_);
  ASSERT_TRUE(heads.ok()) << heads.error();
  EXPECT_EQ(*heads, std::set<std::string>{head});
}

}  // namespace
}  // namespace ll::cluster
