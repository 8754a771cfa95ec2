// Beacons: signed by the worker's key, ignored when the key is not paired, the signature is
// wrong, or the beacon is replayed (old, or not newer than the last one taken).
#include <gtest/gtest.h>

#include "cluster/beacon.h"

namespace ll::cluster {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

struct Device {
  net::KeyPair keys = net::generate_keypair();
  BeaconSigningKeys signing = beacon_signing_keys(keys);
  std::string beacon(int64_t time_ms, uint16_t port = 7070) const {
    Beacon b;
    b.public_key = keys.public_key;
    b.port = port;
    b.threads = 4;
    b.memory_limit = uint64_t{2} << 30;
    b.time_ms = time_ms;
    return sign_beacon(b, signing);
  }
};

TEST(Beacon, SignedAndReadBack) {
  const Device d;
  const std::string packet = d.beacon(kNow);
  ASSERT_EQ(packet.size(), kBeaconBytes);
  auto b = parse_beacon(packet);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(b->public_key, d.keys.public_key);
  EXPECT_EQ(b->port, 7070);
  EXPECT_EQ(b->threads, 4);
  EXPECT_EQ(b->memory_limit, uint64_t{2} << 30);
  EXPECT_EQ(b->time_ms, kNow);
  EXPECT_TRUE(beacon_signature_valid(packet, d.signing.public_key));
  // The signing key is derived from the CURVE key: the same every time, another for another key.
  EXPECT_EQ(beacon_signing_keys(d.keys).public_key, d.signing.public_key);
  EXPECT_NE(beacon_signing_keys(net::generate_keypair()).public_key, d.signing.public_key);
}

TEST(Beacon, MalformedPacketsAreRefused) {
  const Device d;
  const std::string packet = d.beacon(kNow);
  EXPECT_FALSE(parse_beacon(packet.substr(1)).ok());
  EXPECT_FALSE(parse_beacon(packet + "x").ok());
  std::string magic = packet;
  magic[0] = 'X';
  EXPECT_FALSE(parse_beacon(magic).ok());
}

TEST(Beacon, TheFilterTakesOnlyPairedSignedFreshBeacons) {
  const Device paired, stranger;
  const std::map<std::string, std::string> keys{{paired.keys.public_key, paired.signing.public_key}};
  BeaconFilter filter(std::chrono::seconds(30));

  auto ok = filter.accept(paired.beacon(kNow), keys, kNow);
  ASSERT_TRUE(ok.ok()) << ok.error();

  auto unknown = filter.accept(stranger.beacon(kNow), keys, kNow);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("not paired"), std::string::npos) << unknown.error();

  // Forged: the paired key's beacon signed by someone else, or altered after signing.
  Beacon forged_fields;
  forged_fields.public_key = paired.keys.public_key;
  forged_fields.port = 9999;
  forged_fields.time_ms = kNow + 1000;
  auto forged = filter.accept(sign_beacon(forged_fields, stranger.signing), keys, kNow + 1000);
  ASSERT_FALSE(forged.ok());
  EXPECT_NE(forged.error().find("bad signature"), std::string::npos) << forged.error();
  std::string altered = paired.beacon(kNow + 1000);
  altered[36] ^= 1;  // the port
  EXPECT_NE(filter.accept(altered, keys, kNow + 1000).error().find("bad signature"), std::string::npos);

  // Replayed: the same beacon again, or an older one.
  auto replayed = filter.accept(paired.beacon(kNow), keys, kNow + 500);
  ASSERT_FALSE(replayed.ok());
  EXPECT_NE(replayed.error().find("replayed"), std::string::npos) << replayed.error();
  EXPECT_FALSE(filter.accept(paired.beacon(kNow - 100), keys, kNow + 500).ok());
  EXPECT_TRUE(filter.accept(paired.beacon(kNow + 1000), keys, kNow + 1000).ok());

  // Old: a fresh filter (a head just started) still refuses a beacon from long ago.
  BeaconFilter fresh(std::chrono::seconds(30));
  auto old = fresh.accept(paired.beacon(kNow - 31'000), keys, kNow);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().find("too far from now"), std::string::npos) << old.error();
  EXPECT_TRUE(fresh.accept(paired.beacon(kNow - 29'000), keys, kNow).ok());
}

}  // namespace
}  // namespace ll::cluster
