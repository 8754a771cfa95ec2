// CURVE keys, key files, allow-lists, and which endpoints may carry plain text.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "net/keys.h"
#include "net/transport.h"
#include "test_data.h"

namespace ll::net {
namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

void expect_error(const Status& s, const std::string& part) {
  ASSERT_FALSE(s.ok()) << "expected an error containing: " << part;
  EXPECT_NE(s.message().find(part), std::string::npos) << "error was: " << s.message();
}

TEST(NetKeys, GeneratedKeysAreValidAndDistinct) {
  KeyPair a = generate_keypair();
  KeyPair b = generate_keypair();
  EXPECT_TRUE(is_valid_z85_key(a.public_key));
  EXPECT_TRUE(is_valid_z85_key(a.secret_key));
  EXPECT_NE(a.public_key, b.public_key);
  EXPECT_NE(a.secret_key, b.secret_key);
  EXPECT_TRUE(validate_keypair(a).ok());
  expect_error(validate_keypair({a.public_key, b.secret_key}), "does not belong");
}

TEST(NetKeys, Z85Validation) {
  const std::string good = generate_keypair().public_key;
  EXPECT_TRUE(is_valid_z85_key(good));
  EXPECT_FALSE(is_valid_z85_key(""));
  EXPECT_FALSE(is_valid_z85_key(good.substr(1)));
  EXPECT_FALSE(is_valid_z85_key(good + "0"));
  EXPECT_FALSE(is_valid_z85_key(good.substr(1) + " "));   // space is not in the alphabet
  EXPECT_FALSE(is_valid_z85_key(good.substr(1) + "\""));  // nor is the quote
  EXPECT_FALSE(is_valid_z85_key(std::string(40, '#')));   // alphabet only, but each group overflows 32 bits
  EXPECT_TRUE(is_valid_z85_key(std::string(40, '0')));
}

TEST(NetKeys, KeyFileRoundTripWithMode0600) {
  const std::string path = test::temp_path("node.key");
  const KeyPair keys = generate_keypair();
  ASSERT_TRUE(save_keypair(path, keys).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = load_keypair(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  EXPECT_EQ(loaded->public_key, keys.public_key);
  EXPECT_EQ(loaded->secret_key, keys.secret_key);
  // Saving again replaces the file.
  const KeyPair other = generate_keypair();
  ASSERT_TRUE(save_keypair(path, other).ok());
  EXPECT_EQ(load_keypair(path)->public_key, other.public_key);
}

TEST(NetKeys, KeyFileErrorsNameFileAndLine) {
  const std::string path = test::temp_path("bad.key");
  const KeyPair keys = generate_keypair();
  const std::string bad_secret = keys.secret_key.substr(0, 39) + "~";

  write_file(path, "public " + keys.public_key + "\nsecret " + bad_secret + "\n", 0600);
  auto r = load_keypair(path);
  expect_error(r.ok() ? Status::Ok() : r.status(), path + ":2: secret key is not 40 characters of Z85");
  EXPECT_EQ(r.error().find(bad_secret), std::string::npos) << "the secret must never be echoed";

  write_file(path, "# my node\npublic " + keys.public_key + "\nsecrets " + keys.secret_key + "\n", 0600);
  r = load_keypair(path);
  expect_error(r.ok() ? Status::Ok() : r.status(), path + ":3: expected \"public <key>\" or \"secret <key>\"");

  write_file(path, "public " + keys.public_key + "\n", 0600);
  r = load_keypair(path);
  expect_error(r.ok() ? Status::Ok() : r.status(), "no \"secret\" line");

  write_file(path, "public " + generate_keypair().public_key + "\nsecret " + keys.secret_key + "\n", 0600);
  r = load_keypair(path);
  expect_error(r.ok() ? Status::Ok() : r.status(), "does not belong");

  write_file(path, "public " + keys.public_key + "\nsecret " + keys.secret_key + "\n", 0644);
  r = load_keypair(path);
  expect_error(r.ok() ? Status::Ok() : r.status(), "too open");

  r = load_keypair(test::temp_path("missing.key"));
  expect_error(r.ok() ? Status::Ok() : r.status(), "missing.key: cannot open");
  expect_error(save_keypair(path, {keys.public_key, bad_secret}), "refusing to save");
}

TEST(NetKeys, AllowedKeysFile) {
  const std::string path = test::temp_path("allowed.txt");
  const std::string a = generate_keypair().public_key;
  const std::string b = generate_keypair().public_key;
  write_file(path, "# peers of this worker\n\n" + a + "\n   " + b + "   # the head\n", 0644);
  auto keys = load_allowed_keys(path);
  ASSERT_TRUE(keys.ok()) << keys.error();
  EXPECT_EQ(*keys, (std::set<std::string>{a, b}));

  write_file(path, a + "\n\nnot-a-key\n", 0644);
  keys = load_allowed_keys(path);
  expect_error(keys.ok() ? Status::Ok() : keys.status(), path + ":3: \"not-a-key\" is not a public key");

  write_file(path, a + " trailing words\n", 0644);
  keys = load_allowed_keys(path);
  expect_error(keys.ok() ? Status::Ok() : keys.status(), path + ":1: unexpected text after the key");
}

TEST(NetEndpoint, LoopbackOnly) {
  for (const char* e : {"tcp://127.0.0.1:5555", "tcp://127.1.2.3:0", "tcp://localhost:7000", "tcp://[::1]:5555",
                        "tcp://10.0.0.1;127.0.0.1:5555", "ipc:///tmp/ll.sock", "inproc://worker"}) {
    EXPECT_TRUE(is_loopback_endpoint(e)) << e;
  }
  for (const char* e : {"tcp://*:0", "tcp://0.0.0.0:5555", "tcp://192.168.1.2:5555", "tcp://[::]:5555",
                        "tcp://127.0.0.1.example.com:5555", "tcp://eth0:5555", "tcp://127.0.0.1;10.0.0.1:5555",
                        "ws://127.0.0.1:80", "tcp://127.0.0.1", ""}) {
    EXPECT_FALSE(is_loopback_endpoint(e)) << e;
  }
}

}  // namespace
}  // namespace ll::net
