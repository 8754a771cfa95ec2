// The message codec: one protobuf Envelope frame followed by raw tensor frames.
#include <fmt/ranges.h>
#include <google/protobuf/stubs/logging.h>

#include "net/transport.h"
#include "wire.pb.h"

namespace ll::net {

Message::Message() : envelope_(std::make_unique<wire::Envelope>()) {}
Message::Message(Message&&) noexcept = default;
Message& Message::operator=(Message&&) noexcept = default;
Message::~Message() = default;

// Wire layout of one ZeroMQ message (each item is one ZeroMQ frame):
//   [Envelope]   protobuf ll.wire.Envelope, version = PROTOCOL_VERSION, at most limits.max_envelope_bytes
//   [tensor 0]   raw bytes (little-endian, layout declared by the envelope body), at most limits.max_frame_bytes
//   ...          at most limits.max_frames tensor frames
// A ROUTER adds the routing id of the peer as a leading frame; the transport strips it.
std::vector<zmq::message_t> encode(const wire::Envelope& e, std::vector<zmq::message_t> frames) {
  std::vector<zmq::message_t> parts;
  parts.reserve(frames.size() + 1);
  auto serialize = [&parts](const wire::Envelope& envelope) {
    zmq::message_t& m = parts.emplace_back(envelope.ByteSizeLong());
    envelope.SerializeWithCachedSizesToArray(static_cast<uint8_t*>(m.data()));
  };
  if (e.version() == wire::PROTOCOL_VERSION) {
    serialize(e);
  } else {
    wire::Envelope versioned = e;
    versioned.set_version(wire::PROTOCOL_VERSION);
    serialize(versioned);
  }
  for (auto& f : frames) parts.push_back(std::move(f));
  return parts;
}

Result<Message> decode(std::vector<zmq::message_t>& parts, const Limits& limits) {
  if (parts.empty() || parts[0].size() == 0) return Status::Error("empty message (no envelope)");
  const zmq::message_t& head = parts[0];
  if (head.size() > limits.max_envelope_bytes) {
    return Status::Errorf("envelope of {} bytes exceeds the limit of {} bytes", head.size(),
                          limits.max_envelope_bytes);
  }
  Message message;
  // Protobuf would log each string field that is not UTF-8 before refusing it; the caller
  // reports the refusal through its rate-limited log instead.
  const google::protobuf::LogSilencer silent;
  if (!message.envelope().ParseFromArray(head.data(), static_cast<int>(head.size()))) {
    return Status::Errorf("unparsable envelope ({} bytes are not a valid ll.wire.Envelope)", head.size());
  }
  if (message.envelope().version() != wire::PROTOCOL_VERSION) {
    if (message.envelope().version() == wire::VERSION_UNSPECIFIED) {
      return Status::Errorf("envelope has no protocol version (expected version {})", +wire::PROTOCOL_VERSION);
    }
    return Status::Errorf("protocol version {} received, expected version {}", message.envelope().version(),
                          +wire::PROTOCOL_VERSION);
  }
  const size_t n_frames = parts.size() - 1;
  if (n_frames > limits.max_frames) {
    return Status::Errorf("{} tensor frames exceed the limit of {} frames", n_frames, limits.max_frames);
  }
  for (size_t i = 0; i < n_frames; ++i) {
    if (parts[i + 1].size() > limits.max_frame_bytes) {
      return Status::Errorf("tensor frame {} of {} bytes exceeds the limit of {} bytes", i, parts[i + 1].size(),
                            limits.max_frame_bytes);
    }
  }
  message.frames.reserve(n_frames);
  for (size_t i = 0; i < n_frames; ++i) message.frames.push_back(std::move(parts[i + 1]));
  return message;
}

Status expect_frame_bytes(const Message& message, std::initializer_list<uint64_t> bytes) {
  bool match = message.frames.size() == bytes.size();
  for (size_t i = 0; match && i < bytes.size(); ++i) match = message.frames[i].size() == bytes.begin()[i];
  if (match) return Status::Ok();
  std::vector<size_t> got;
  for (const auto& f : message.frames) got.push_back(f.size());
  return Status::Errorf("tensor frames of [{}] bytes declared, got [{}] bytes", fmt::join(bytes, ", "),
                        fmt::join(got, ", "));
}

}  // namespace ll::net
