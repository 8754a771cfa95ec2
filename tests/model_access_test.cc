// A worker opens only regular files inside the directories its owner allowed: no "..", no
// symbolic link out, no FIFO, device or directory.
#include "cluster/model_access.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_data.h"

namespace ll::cluster {
namespace {
namespace fs = std::filesystem;

class ModelAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::canonical(fs::path(test::temp_path("model-access")).parent_path()) / "model-access";
    fs::remove_all(root_);
    fs::create_directories(root_ / "models" / "sub");
    fs::create_directories(root_ / "models-b");
    fs::create_directories(root_ / "outside");
    std::ofstream(root_ / "models" / "m.gguf") << "GGUF";
    std::ofstream(root_ / "models" / "sub" / "n.gguf") << "GGUF";
    std::ofstream(root_ / "models-b" / "b.gguf") << "GGUF";
    std::ofstream(root_ / "outside" / "secret.gguf") << "GGUF";
    fs::create_symlink(root_ / "outside" / "secret.gguf", root_ / "models" / "link-out.gguf");
    fs::create_symlink(root_ / "models" / "m.gguf", root_ / "models" / "link-in.gguf");
    ASSERT_EQ(mkfifo((root_ / "models" / "pipe.gguf").c_str(), 0600), 0);
    auto a = ModelAccess::create({(root_ / "models").string()});
    ASSERT_TRUE(a.ok()) << a.error();
    access_ = std::make_unique<ModelAccess>(std::move(a).value());
  }
  std::string in(const std::string& name) const { return (root_ / "models" / name).string(); }
  std::string error_of(const std::string& path) const {
    auto r = access_->resolve(path);
    return r.ok() ? "(allowed: " + r.value() + ")" : r.error();
  }

  fs::path root_;
  std::unique_ptr<ModelAccess> access_;
};

TEST_F(ModelAccessTest, RegularFilesInsideAreAllowedAtTheirRealPath) {
  for (const char* name : {"m.gguf", "sub/n.gguf", "link-in.gguf", "./sub/n.gguf"}) {
    auto r = access_->resolve(in(name));
    ASSERT_TRUE(r.ok()) << name << ": " << r.error();
  }
  EXPECT_EQ(access_->resolve(in("link-in.gguf")).value(), in("m.gguf"));
}

TEST_F(ModelAccessTest, DotDotIsRefusedEvenWhenItStaysInside) {
  const std::string path = in("sub/../m.gguf");
  EXPECT_EQ(error_of(path), "model path " + path + " contains '..'; name the file inside the directories this worker "
                            "serves (" + in("").substr(0, in("").size() - 1) + ")");
  EXPECT_NE(error_of(in("../outside/secret.gguf")).find("contains '..'"), std::string::npos);
}

TEST_F(ModelAccessTest, OutsideAndSymlinksOutAreRefusedNamingTheDirectories) {
  const std::string dir = (root_ / "models").string();
  const std::string outside = (root_ / "outside" / "secret.gguf").string();
  EXPECT_EQ(error_of(outside), "model path " + outside + " is outside the directories this worker serves (" + dir +
                                   "); start the worker with --models DIR");
  EXPECT_EQ(error_of(in("link-out.gguf")), "model path " + in("link-out.gguf") + " (it leads to " + outside +
                                              ") is outside the directories this worker serves (" + dir +
                                              "); start the worker with --models DIR");
  // A directory whose name starts like an allowed one is not inside it.
  EXPECT_NE(error_of((root_ / "models-b" / "b.gguf").string()).find("is outside"), std::string::npos);
}

TEST_F(ModelAccessTest, FifosDevicesAndDirectoriesAreRefusedByType) {
  EXPECT_EQ(error_of(in("pipe.gguf")), "model path " + in("pipe.gguf") + " is a FIFO, not a regular file");
  EXPECT_EQ(error_of(in("sub")), "model path " + in("sub") + " is a directory, not a regular file");
  auto dev = ModelAccess::create({"/dev"});
  ASSERT_TRUE(dev.ok()) << dev.error();
  auto zero = dev->resolve("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error(), "model path /dev/zero is a character device, not a regular file");
  EXPECT_NE(error_of("/dev/zero").find("is outside the directories"), std::string::npos);
}

TEST_F(ModelAccessTest, SeveralDirectoriesAndMissingOnes) {
  auto two = ModelAccess::create({(root_ / "models").string(), (root_ / "models-b").string()});
  ASSERT_TRUE(two.ok()) << two.error();
  EXPECT_TRUE(two->resolve((root_ / "models-b" / "b.gguf").string()).ok());
  EXPECT_EQ(two->describe(), (root_ / "models").string() + ", " + (root_ / "models-b").string());
  auto missing = ModelAccess::create({(root_ / "nope").string()});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("model directory " + (root_ / "nope").string()), std::string::npos) << missing.error();
  EXPECT_NE(error_of(in("absent.gguf")).find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace ll::cluster
