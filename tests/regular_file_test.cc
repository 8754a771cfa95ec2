// Only regular files are opened for reading: a FIFO, a device or a directory is refused at
// once with its type named, by the helper and by every reader built on it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "core/mapped_file.h"
#include "core/regular_file.h"
#include "gguf/gguf_file.h"
#include "model/model.h"
#include "net/keys.h"
#include "profile/device_profile.h"
#include "cluster/content_hash.h"
#include "test_data.h"

namespace ll {
namespace {

std::string make_fifo(const std::string& name) {
  const std::string path = test::temp_path(name);
  std::filesystem::remove(path);
  EXPECT_EQ(mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

// Runs `open` and returns its error, failing the test when it is still blocked after 5 s (a
// writer is then attached to the FIFO so the blocked open returns and the test can end).
template <typename Open>
std::string error_within_seconds(const std::string& fifo, Open open) {
  auto done = std::async(std::launch::async, [&] { return open(); });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "opening the FIFO " << fifo << " blocked";
    const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    auto r = done.get();
    if (w >= 0) ::close(w);
    return r;
  }
  return done.get();
}

TEST(RegularFile, FifoIsRefusedWithoutBlocking) {
  const std::string fifo = make_fifo("plain.fifo");
  const std::string error = error_within_seconds(fifo, [&] {
    auto f = RegularFile::open(fifo);
    return f.ok() ? std::string() : f.error();
  });
  EXPECT_EQ(error, fifo + " is a FIFO, not a regular file");
}

TEST(RegularFile, DeviceAndDirectoryAreRefusedWithTheirType) {
  auto dev = RegularFile::open("/dev/zero");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.error(), "/dev/zero is a character device, not a regular file");
  const std::string dir = std::filesystem::path(test::temp_path("x")).parent_path().string();
  auto d = RegularFile::open(dir);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error(), dir + " is a directory, not a regular file; give the path of a file in it");
  auto missing = RegularFile::open(test::temp_path("missing"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().find("No such file"), std::string::npos) << missing.error();
}

TEST(RegularFile, ReadsARegularFileWholeAndRefusesOneTooLarge) {
  const std::string path = test::temp_path("small.txt");
  std::ofstream(path) << "hello\nworld\n";
  auto text = read_regular_file(path);
  ASSERT_TRUE(text.ok()) << text.error();
  EXPECT_EQ(text.value(), "hello\nworld\n");
  auto refused = read_regular_file(path, 4);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("larger than 4 bytes"), std::string::npos) << refused.error();
  auto proc = read_regular_file("/proc/self/status");  // reports a size of 0, has content
  ASSERT_TRUE(proc.ok()) << proc.error();
  EXPECT_NE(proc.value().find("VmRSS"), std::string::npos);
}

// Every reader of files goes through the check: none of them blocks on a FIFO.
TEST(RegularFile, EveryReaderRefusesAFifoWithoutBlocking) {
  const std::string fifo = make_fifo("reader.fifo");
  const std::string expected = fifo + " is a FIFO, not a regular file";
  auto contains = [&](const std::string& error) { return error.find(expected) != std::string::npos; };
  auto error_of = [](const auto& result) { return result.ok() ? std::string("(opened)") : result.error(); };
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(MappedFile::open(fifo)); }));
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(gguf::GgufFile::open(fifo)); }));
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(model::Model::load(fifo)); }));
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(net::load_allowed_keys(fifo)); }));
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(profile::read_json_file(fifo)); }));
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(cluster::sha256_file(fifo)); }));
  chmod(fifo.c_str(), 0600);
  EXPECT_PRED1(contains, error_within_seconds(fifo, [&] { return error_of(net::load_keypair(fifo)); }));
}

}  // namespace
}  // namespace ll
