// The worker's checks of requests other than steps, each refusal with its reason.
#include "cluster/request_validation.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/keys.h"

namespace ll::cluster {
namespace {

std::vector<zmq::message_t> one_frame(size_t bytes) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(bytes);
  return frames;
}

TEST(RequestValidation, AShardChunkCarriesExactlyItsDeclaredBytes) {
  wire::ShardData chunk;
  chunk.set_chunk_bytes(16);
  EXPECT_TRUE(validate_shard_chunk(chunk, one_frame(16)).ok());
  EXPECT_EQ(validate_shard_chunk(chunk, one_frame(15)).message(),
            "shard chunk declares 16 bytes but carries 1 frame(s) of 15 bytes");
  EXPECT_EQ(validate_shard_chunk(chunk, {}).message(), "shard chunk declares 16 bytes but carries 0 frame(s) of 0 bytes");
}

TEST(RequestValidation, APingCarriesItsPayloadOrNothing) {
  wire::Ping ping;
  EXPECT_TRUE(validate_ping(ping, {}).ok());
  EXPECT_EQ(validate_ping(ping, one_frame(1)).message(), "ping declares 0 bytes but carries 1 frame(s)");
  ping.set_payload_bytes(8);
  EXPECT_TRUE(validate_ping(ping, one_frame(8)).ok());
  EXPECT_EQ(validate_ping(ping, one_frame(9)).message(), "ping declares 8 bytes but carries 1 frame(s)");
}

TEST(RequestValidation, ALoadNeedsAContextAUnitRangeAndValidKeys) {
  wire::LoadSegment load;
  load.set_n_ctx(256);
  load.set_unit_begin(0);
  load.set_unit_end(4);
  EXPECT_TRUE(validate_load_fields(load, false).ok());

  wire::LoadSegment no_context = load;
  no_context.set_n_ctx(0);
  EXPECT_EQ(validate_load_fields(no_context, false).message(), "context of 0 positions is outside 1..1048576");
  wire::LoadSegment huge_context = load;
  huge_context.set_n_ctx(kMaxWorkerContext + 1);
  EXPECT_FALSE(validate_load_fields(huge_context, false).ok());
  wire::LoadSegment empty = load;
  empty.set_unit_begin(4);
  EXPECT_EQ(validate_load_fields(empty, false).message(), "empty unit range 4..4");
  wire::LoadSegment bad_key = load;
  bad_key.add_allow_keys("not a key");
  EXPECT_EQ(validate_load_fields(bad_key, false).message(), "allow key 'not a key' is not a Z85 public key");

  wire::LoadSegment unpinned_next = load;
  unpinned_next.set_next_endpoint("tcp://127.0.0.1:7070");
  EXPECT_EQ(validate_load_fields(unpinned_next, false).message(),
            "no valid public key given for the next worker tcp://127.0.0.1:7070");
  EXPECT_TRUE(validate_load_fields(unpinned_next, /*insecure=*/true).ok());
  unpinned_next.set_next_public_key(net::generate_keypair().public_key);
  EXPECT_TRUE(validate_load_fields(unpinned_next, false).ok());
}

TEST(RequestValidation, AProfileRequestStaysWithinItsLimitsAndNamesKeysForItsPeers) {
  wire::ProfileRequest r;
  r.set_repetitions(3);
  r.set_prompt_chunk(64);
  r.set_decode_context(256);
  EXPECT_TRUE(validate_profile_request(r, false).ok());
  for (auto broken : {+[](wire::ProfileRequest& p) { p.set_repetitions(0); },
                      +[](wire::ProfileRequest& p) { p.set_repetitions(101); },
                      +[](wire::ProfileRequest& p) { p.set_prompt_chunk(4097); },
                      +[](wire::ProfileRequest& p) { p.set_decode_context(kMaxWorkerContext + 1); }}) {
    wire::ProfileRequest b = r;
    broken(b);
    EXPECT_EQ(validate_profile_request(b, false).message(),
              "profile request outside its limits (repetitions 1..100, prompt chunk 1..4096, context up to 2^20)");
  }
  wire::Peer* peer = r.add_peers();
  peer->set_endpoint("tcp://127.0.0.1:7071");
  EXPECT_EQ(validate_profile_request(r, false).message(), "no valid public key for peer tcp://127.0.0.1:7071");
  EXPECT_TRUE(validate_profile_request(r, /*insecure=*/true).ok());
}

}  // namespace
}  // namespace ll::cluster
