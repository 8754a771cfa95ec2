// A head's options from its user's flags: endpoints, pinned keys, its own key pair.
#include <gtest/gtest.h>

#include <fstream>

#include "cluster/head_setup.h"
#include "net/keys.h"
#include "test_data.h"

namespace ll::cluster {
namespace {

HeadSetup setup(std::vector<std::string> workers, const std::string& worker_keys, const std::string& key_path,
                bool insecure = false) {
  HeadSetup s;
  s.workers = std::move(workers);
  s.worker_keys = worker_keys;
  s.key_path = key_path;
  s.insecure = insecure;
  return s;
}

TEST(HeadSetup, InsecureWorkersGetTcpEndpointsAndNoKeys) {
  auto h = head_options(setup({"127.0.0.1:7070", "tcp://127.0.0.1:7071"}, "", "", /*insecure=*/true));
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_TRUE(h->insecure);
  ASSERT_EQ(h->workers.size(), 2u);
  EXPECT_EQ(h->workers[0].endpoint, "tcp://127.0.0.1:7070");
  EXPECT_EQ(h->workers[1].endpoint, "tcp://127.0.0.1:7071");
  EXPECT_EQ(h->workers[0].public_key, "");
}

TEST(HeadSetup, SecureWorkersNeedTheHeadsKeyAndOneKeyEach) {
  auto no_key = head_options(setup({"a:1"}, "", ""));
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.error().find("--key FILE"), std::string::npos) << no_key.error();

  const net::KeyPair head = net::generate_keypair();
  const std::string key_path = test::temp_path("head.key");
  ASSERT_TRUE(net::save_keypair(key_path, head).ok());
  const std::string w0 = net::generate_keypair().public_key, w1 = net::generate_keypair().public_key;

  auto short_of_keys = head_options(setup({"a:1", "b:2"}, w0, key_path));
  ASSERT_FALSE(short_of_keys.ok());
  EXPECT_EQ(short_of_keys.error(), "2 workers but 1 --worker-keys: give each worker's public key, in order");

  auto h = head_options(setup({"a:1", "b:2"}, w0 + "," + w1, key_path));
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_EQ(h->keys.public_key, head.public_key);
  EXPECT_EQ(h->workers[0].public_key, w0);
  EXPECT_EQ(h->workers[1].public_key, w1);
  EXPECT_EQ(h->workers[1].endpoint, "tcp://b:2");
}

TEST(HeadSetup, NoWorkersReadNoKeys) {
  auto h = head_options({});
  ASSERT_TRUE(h.ok()) << h.error();
  EXPECT_TRUE(h->workers.empty());
}

}  // namespace
}  // namespace ll::cluster
