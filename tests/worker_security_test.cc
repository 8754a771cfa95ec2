// A worker's security from its owner's flags: key pair, allowed heads, and the refusal of a
// secure worker nobody may command.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>

#include "cluster/worker_security.h"
#include "net/keys.h"
#include "test_data.h"

namespace ll::cluster {
namespace {

WorkerSecuritySetup setup(const std::string& key_path, std::vector<std::string> allow, const std::string& allow_file) {
  WorkerSecuritySetup s;
  s.key_path = key_path;
  s.allow = std::move(allow);
  s.allow_file = allow_file;
  return s;
}

TEST(WorkerSecurity, InsecureNeedsNoKeys) {
  WorkerSecuritySetup s;
  s.insecure = true;
  auto o = worker_security(s);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_TRUE(o->insecure);
  EXPECT_TRUE(o->allowed.empty());
}

TEST(WorkerSecurity, AllowedKeysFromTheListAndTheFile) {
  const std::string listed = net::generate_keypair().public_key, filed = net::generate_keypair().public_key;
  const std::string allow_file = test::temp_path("allowed.keys");
  std::ofstream(allow_file) << "# heads\n" << filed << "\n";
  const net::KeyPair own = net::generate_keypair();
  const std::string key_path = test::temp_path("worker.key");
  ASSERT_TRUE(net::save_keypair(key_path, own).ok());

  auto o = worker_security(setup(key_path, {listed}, allow_file));
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_FALSE(o->insecure);
  EXPECT_EQ(o->keys.public_key, own.public_key);
  EXPECT_EQ(o->allowed, (std::set<std::string>{listed, filed}));

  auto fresh = worker_security(setup("", {listed}, ""));
  ASSERT_TRUE(fresh.ok()) << fresh.error();
  EXPECT_TRUE(net::validate_keypair(fresh->keys).ok());
  EXPECT_NE(fresh->keys.public_key, own.public_key);
}

TEST(WorkerSecurity, RefusesBadKeysAndAWorkerNobodyMayCommand) {
  auto bad = worker_security(setup("", {"not-a-key"}, ""));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "--allow not-a-key: not a Z85 public key");
  auto nobody = worker_security(setup("", {}, ""));
  ASSERT_FALSE(nobody.ok());
  EXPECT_NE(nobody.error().find("no head may connect"), std::string::npos) << nobody.error();
}

// The pipe a parent wrote the pair into before starting the worker.
int pipe_holding(const std::string& text) {
  int fds[2];
  EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
  EXPECT_EQ(write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fds[1]);
  return fds[0];
}

TEST(WorkerSecurity, AKeyPairFromAPipeIsTheWorkersAndThePipeIsClosed) {
  const net::KeyPair own = net::generate_keypair();
  WorkerSecuritySetup s = setup("", {net::generate_keypair().public_key}, "");
  s.key_fd = pipe_holding("public " + own.public_key + "\nsecret " + own.secret_key + "\n");
  auto o = worker_security(s);
  ASSERT_TRUE(o.ok()) << o.error();
  EXPECT_EQ(o->keys.public_key, own.public_key);
  EXPECT_EQ(o->keys.secret_key, own.secret_key);
  EXPECT_EQ(fcntl(s.key_fd, F_GETFD), -1);  // closed once read

  s.key_fd = pipe_holding("public " + own.public_key + "\n");
  auto half = worker_security(s);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error(), fmt::format("--key-fd {}: no \"secret\" line", s.key_fd));
  s.key_path = "worker.key";
  auto both = worker_security(s);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error(), "give --key or --key-fd, not both");
}

}  // namespace
}  // namespace ll::cluster
