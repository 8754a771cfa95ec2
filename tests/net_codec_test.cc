// The envelope codec: round trips, and every kind of malformed input rejected with a reason.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "net/transport.h"
#include "wire.pb.h"

namespace ll::net {
namespace {

zmq::message_t bytes_frame(size_t n, uint8_t seed) {
  zmq::message_t m(n);
  auto* p = static_cast<uint8_t*>(m.data());
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
  return m;
}

wire::Envelope step_envelope() {
  wire::Envelope e;
  e.set_request_id(42);
  wire::Step* step = e.mutable_step();
  step->set_session(7);
  step->set_sequence(3);
  step->set_position(128);
  step->set_n_tokens(2);
  step->add_tokens(15043);
  step->add_tokens(-1);
  step->set_hidden_bytes(4096);
  step->mutable_sampler()->set_temp(0.7f);
  step->mutable_sampler()->set_seed(1234);
  return e;
}

// An envelope frame as a peer might send it, bypassing encode() (which always sets the version).
std::vector<zmq::message_t> raw(const wire::Envelope& e) {
  std::vector<zmq::message_t> parts;
  parts.emplace_back(e.SerializeAsString());
  return parts;
}

void expect_rejected(std::vector<zmq::message_t> parts, const Limits& limits, const std::string& reason) {
  auto decoded = decode(parts, limits);
  ASSERT_FALSE(decoded.ok()) << "accepted a message that should fail with: " << reason;
  EXPECT_NE(decoded.error().find(reason), std::string::npos) << "error was: " << decoded.error();
}

TEST(NetCodec, RoundTripWithFramesMovesTensorBytes) {
  std::vector<zmq::message_t> frames;
  frames.push_back(bytes_frame(4096, 1));
  frames.push_back(bytes_frame(17, 2));
  const void* tensor_bytes = frames[0].data();

  wire::Envelope sent = step_envelope();
  std::vector<zmq::message_t> parts = encode(sent, std::move(frames));
  ASSERT_EQ(parts.size(), 3u);
  auto decoded = decode(parts, Limits{});
  ASSERT_TRUE(decoded.ok()) << decoded.error();

  sent.set_version(wire::PROTOCOL_VERSION);
  EXPECT_EQ(decoded->envelope().SerializeAsString(), sent.SerializeAsString());
  ASSERT_EQ(decoded->frames.size(), 2u);
  EXPECT_EQ(decoded->frames[0].data(), tensor_bytes);  // moved through encode and decode, never copied
  EXPECT_TRUE(decoded->frames[0] == bytes_frame(4096, 1));
  EXPECT_TRUE(decoded->frames[1] == bytes_frame(17, 2));
  EXPECT_TRUE(expect_frame_bytes(*decoded, {4096, 17}).ok());
}

TEST(NetCodec, EncodeSetsTheProtocolVersion) {
  wire::Envelope e;
  e.mutable_hello()->set_client("head");
  ASSERT_EQ(e.version(), 0u);
  auto parts = encode(e, {});
  ASSERT_EQ(parts.size(), 1u);
  auto decoded = decode(parts, Limits{});
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  EXPECT_EQ(decoded->envelope().version(), static_cast<uint32_t>(wire::PROTOCOL_VERSION));
  EXPECT_EQ(decoded->envelope().hello().client(), "head");
  EXPECT_TRUE(decoded->frames.empty());
}

TEST(NetCodec, ExpectFrameBytesNamesBothSizes) {
  auto parts = encode(step_envelope(), [] {
    std::vector<zmq::message_t> f;
    f.push_back(bytes_frame(4000, 0));
    return f;
  }());
  auto decoded = decode(parts, Limits{});
  ASSERT_TRUE(decoded.ok()) << decoded.error();
  Status s = expect_frame_bytes(*decoded, {4096});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("[4096] bytes declared, got [4000]"), std::string::npos) << s.message();
  EXPECT_FALSE(expect_frame_bytes(*decoded, {}).ok());
  EXPECT_FALSE(expect_frame_bytes(*decoded, {4000, 0}).ok());
  EXPECT_TRUE(expect_frame_bytes(*decoded, {4000}).ok());
}

TEST(NetCodec, RejectsEmptyMessages) {
  expect_rejected({}, Limits{}, "empty message");
  std::vector<zmq::message_t> empty_frame;
  empty_frame.emplace_back();
  expect_rejected(std::move(empty_frame), Limits{}, "empty message");
}

TEST(NetCodec, RejectsGarbageBytes) {
  std::vector<zmq::message_t> parts;
  parts.emplace_back(std::string("\xff\xff\xff\xff garbage that is not protobuf"));
  expect_rejected(std::move(parts), Limits{}, "unparsable envelope");
}

TEST(NetCodec, RejectsTruncatedProtobuf) {
  wire::Envelope e;
  e.set_version(wire::PROTOCOL_VERSION);
  e.mutable_error()->set_message("a message long enough to be cut in the middle");
  const std::string full = e.SerializeAsString();
  std::vector<zmq::message_t> parts;
  parts.emplace_back(full.data(), full.size() - 10);
  expect_rejected(std::move(parts), Limits{}, "unparsable envelope");
}

TEST(NetCodec, RejectsWrongOrMissingVersion) {
  wire::Envelope e = step_envelope();
  e.set_version(2);
  expect_rejected(raw(e), Limits{}, "protocol version 2 received, expected version 1");
  e.set_version(0);
  expect_rejected(raw(e), Limits{}, "no protocol version (expected version 1)");
}

TEST(NetCodec, RejectsOversizedEnvelope) {
  wire::Envelope e;
  e.mutable_error()->set_message(std::string(100, 'x'));
  Limits limits;
  limits.max_envelope_bytes = 64;
  auto parts = encode(e, {});
  const size_t size = parts[0].size();
  expect_rejected(std::move(parts), limits,
                  "envelope of " + std::to_string(size) + " bytes exceeds the limit of 64 bytes");
}

TEST(NetCodec, RejectsTooManyFrames) {
  Limits limits;
  limits.max_frames = 2;
  std::vector<zmq::message_t> frames;
  for (int i = 0; i < 3; ++i) frames.push_back(bytes_frame(8, 0));
  expect_rejected(encode(step_envelope(), std::move(frames)), limits, "3 tensor frames exceed the limit of 2");
}

TEST(NetCodec, RejectsOversizedFrame) {
  Limits limits;
  limits.max_frame_bytes = 16;
  std::vector<zmq::message_t> frames;
  frames.push_back(bytes_frame(16, 0));
  frames.push_back(bytes_frame(17, 0));
  expect_rejected(encode(step_envelope(), std::move(frames)), limits,
                  "tensor frame 1 of 17 bytes exceeds the limit of 16 bytes");
}

// Protobuf logs a line for every string field that is not UTF-8 before it refuses the message; a
// stranger sending such messages at will must not write the worker's log, so decode() is silent
// and the refusal is reported once, by its caller's rate-limited log.
TEST(NetCodec, InvalidUtf8IsRefusedWithoutALogLine) {
  // Envelope { version: 1, hello { client: "\xff\xfe" } }, encoded by hand: protobuf would log
  // while serializing it, too.
  const uint8_t bytes[] = {0x08, 0x01, 0x52, 0x04, 0x0a, 0x02, 0xff, 0xfe};
  std::vector<zmq::message_t> parts;
  parts.emplace_back(bytes, sizeof bytes);
  testing::internal::CaptureStderr();
  auto m = decode(parts, Limits{});
  const std::string logged = testing::internal::GetCapturedStderr();
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().find("not a valid ll.wire.Envelope"), std::string::npos) << m.error();
  EXPECT_EQ(logged, "");
}

}  // namespace
}  // namespace ll::net
