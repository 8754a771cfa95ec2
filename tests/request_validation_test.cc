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
  r.set_cache_type_k("q8_0");
  r.set_cache_type_v("f32");
  EXPECT_TRUE(validate_profile_request(r, false).ok());
  wire::ProfileRequest unknown_type = r;
  unknown_type.set_cache_type_v("bf16");
  EXPECT_EQ(validate_profile_request(unknown_type, false).message(),
            "unknown KV cache type 'bf16': use f32, f16 or q8_0");
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

TEST(RequestValidation, KvDataMatchesTheUnitItCarries) {
  model::HParams hp;
  hp.n_layer = 2;  // units: embed 0, attn[0] 1, ffn[0] 2, attn[1] 3, ffn[1] 4, head 5
  hp.n_head = 2;
  hp.n_head_kv = 2;
  hp.head_dim = 4;  // kv_dim 8: 2 * length * 8 * 4 bytes per attention unit in an F32 cache
  const KvDataLimits limits{.hp = hp, .range = {1, 6}, .n_ctx = 16, .kv_types = {DType::F32, DType::F32}};
  wire::KvData kv;
  kv.set_unit(3);
  kv.set_length(2);
  kv.set_bytes(128);
  kv.set_cache_type_k("f32");
  kv.set_cache_type_v("f32");
  EXPECT_TRUE(validate_kv_data(kv, one_frame(128), limits).ok());
  EXPECT_EQ(validate_kv_data(kv, one_frame(127), limits).message(),
            "KvData of unit 3 for 2 positions must carry one frame of 128 bytes (declared 128, got 1 frame(s))");
  kv.set_unit(0);
  EXPECT_NE(validate_kv_data(kv, one_frame(128), limits).message().find("KvData for unit 0, which the prepared segment"),
            std::string::npos);
  kv.set_unit(3);
  kv.set_length(17);
  EXPECT_EQ(validate_kv_data(kv, one_frame(128), limits).message(),
            "KvData for 17 positions does not fit the prepared context of 16");
  // The head unit: a sampler state, no frame, no more recent tokens than positions.
  kv.set_unit(5);
  kv.set_length(2);
  kv.set_bytes(0);
  EXPECT_EQ(validate_kv_data(kv, {}, limits).message(), "KvData of the head unit 5 carries no sampler state");
  kv.mutable_sampler()->mutable_params()->set_top_p(1.0f);
  kv.mutable_sampler()->mutable_params()->set_repeat_penalty(1.0f);
  EXPECT_TRUE(validate_kv_data(kv, {}, limits).ok());
  for (int i = 0; i < 3; ++i) kv.mutable_sampler()->add_recent(i);
  EXPECT_EQ(validate_kv_data(kv, {}, limits).message(), "sampler state remembers 3 tokens of a sequence of 2 positions");
  kv.mutable_sampler()->mutable_params()->set_top_p(2.0f);
  EXPECT_EQ(validate_kv_data(kv, {}, limits).message(), "top-p 2 is outside 0..1 (1 = off)");
  // An FFN unit carries a length only; `last` carries nothing.
  kv.Clear();
  kv.set_unit(4);
  EXPECT_TRUE(validate_kv_data(kv, {}, limits).ok());
  EXPECT_EQ(validate_kv_data(kv, one_frame(4), limits).message(), "KvData of unit 4 carries no frame");
  kv.set_last(true);
  EXPECT_EQ(validate_kv_data(kv, one_frame(4), limits).message(), "the last KvData of a transfer carries no frame");
}

TEST(RequestValidation, ReshapeSendKvAndSpeedProbeFieldsAreChecked) {
  wire::Reshape leave;
  EXPECT_TRUE(validate_reshape_fields(leave, false).ok());  // an empty range needs nothing else
  wire::Reshape r;
  r.set_unit_begin(0);
  r.set_unit_end(4);
  r.set_n_ctx(64);
  EXPECT_EQ(validate_reshape_fields(r, false).message(), "Reshape names neither a model path nor a shard");
  r.set_model_path("m.gguf");
  EXPECT_TRUE(validate_reshape_fields(r, false).ok());
  r.set_next_endpoint("tcp://10.0.0.2:7070");
  EXPECT_EQ(validate_reshape_fields(r, false).message(), "no valid public key given for the next worker tcp://10.0.0.2:7070");
  r.add_allow_keys("nope");
  EXPECT_EQ(validate_reshape_fields(r, false).message(), "allow key 'nope' is not a Z85 public key");

  wire::SendKv send;
  send.set_unit_begin(3);
  send.set_unit_end(13);
  send.set_to_endpoint("tcp://10.0.0.3:7070");
  EXPECT_EQ(validate_send_kv(send, 12, true).message(), "SendKv names units 3..12, not a range within the model's 12 units");
  send.set_unit_end(12);
  EXPECT_TRUE(validate_send_kv(send, 12, true).ok());
  EXPECT_EQ(validate_send_kv(send, 12, false).message(), "no valid public key given for the destination tcp://10.0.0.3:7070");

  wire::SpeedProbe probe;
  EXPECT_EQ(validate_speed_probe(probe).message(), "speed probe of 0 repetitions is outside 1..100");
  probe.set_repetitions(100);
  EXPECT_TRUE(validate_speed_probe(probe).ok());
}


// The cache types travel with the KV rows: a frame in other types than the prepared segment's
// is refused even when its size happens to match, and unknown type names are refused.
TEST(RequestValidation, KvDataIsInThePreparedSegmentsCacheTypes) {
  model::HParams hp;
  hp.n_layer = 1;  // units: embed 0, attn[0] 1, ffn[0] 2, head 3
  hp.n_head = 1;
  hp.n_head_kv = 1;
  hp.head_dim = 32;
  const KvDataLimits limits{.hp = hp, .range = {0, 4}, .n_ctx = 16, .kv_types = {DType::Q8_0, DType::F16}};
  wire::KvData kv;
  kv.set_unit(1);
  kv.set_length(2);
  kv.set_bytes(2 * (34 + 64));  // two positions: a Q8_0 block of K and 32 F16 values of V
  kv.set_cache_type_k("q8_0");
  kv.set_cache_type_v("f16");
  EXPECT_TRUE(validate_kv_data(kv, one_frame(196), limits).ok());
  kv.set_cache_type_k("f16");
  EXPECT_EQ(validate_kv_data(kv, one_frame(196), limits).message(),
            "KvData of unit 1 is in a f16/f16 KV cache but the prepared segment's is q8_0/f16");
  kv.set_cache_type_k("q4_0");
  EXPECT_EQ(validate_kv_data(kv, one_frame(196), limits).message(), "unknown KV cache type 'q4_0': use f32, f16 or q8_0");
}

TEST(RequestValidation, ALoadOrReshapeNamesKnownCacheTypes) {
  wire::LoadSegment load;
  load.set_n_ctx(256);
  load.set_unit_begin(0);
  load.set_unit_end(4);
  EXPECT_TRUE(validate_load_fields(load, true).ok());  // empty: the default, f16
  EXPECT_EQ(kv_types_from_wire("", "").value(), model::KvTypes{});
  load.set_cache_type_k("q8_0");
  load.set_cache_type_v("F32");
  EXPECT_TRUE(validate_load_fields(load, true).ok());
  EXPECT_EQ(kv_types_from_wire("q8_0", "F32").value(), (model::KvTypes{DType::Q8_0, DType::F32}));
  load.set_cache_type_v("bf16");
  EXPECT_EQ(validate_load_fields(load, true).message(), "unknown KV cache type 'bf16': use f32, f16 or q8_0");
  wire::Reshape reshape;
  reshape.set_model_path("m.gguf");
  reshape.set_n_ctx(256);
  reshape.set_unit_begin(0);
  reshape.set_unit_end(4);
  reshape.set_cache_type_k("int8");
  EXPECT_EQ(validate_reshape_fields(reshape, true).message(), "unknown KV cache type 'int8': use f32, f16 or q8_0");
}

}  // namespace
}  // namespace ll::cluster
