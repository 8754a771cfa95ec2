// The transport over real sockets: encryption, authentication, malformed input, lost peers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "net/transport.h"
#include "wire.pb.h"

namespace ll::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

SecurityOptions secure(const KeyPair& keys, std::set<std::string> allowed = {}) {
  SecurityOptions s;
  s.keys = keys;
  s.allowed = std::move(allowed);
  return s;
}

SecurityOptions insecure() {
  SecurityOptions s;
  s.insecure = true;
  return s;
}

wire::Envelope hello(const std::string& name) {
  wire::Envelope e;
  e.mutable_hello()->set_client(name);
  return e;
}

zmq::message_t pattern_frame(size_t bytes, uint8_t seed) {
  zmq::message_t m(bytes);
  auto* p = static_cast<uint8_t*>(m.data());
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(seed ^ (i * 131 + (i >> 9)));
  return m;
}

std::vector<zmq::message_t> frames_of(zmq::message_t m) {
  std::vector<zmq::message_t> v;
  v.push_back(std::move(m));
  return v;
}

int port_of(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

std::optional<Incoming> receive_within(Server& server, std::chrono::milliseconds timeout) {
  auto r = server.receive(timeout);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(*r) : std::nullopt;
}

std::optional<Message> receive_within(Client& client, std::chrono::milliseconds timeout) {
  auto r = client.receive(timeout);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(*r) : std::nullopt;
}

// Sends a hello, expects it at the server, answers, expects the answer at the client.
void expect_round_trip(Server& server, Client& client) {
  ASSERT_TRUE(client.send(hello("round-trip")).ok());
  auto in = receive_within(server, 2000ms);
  ASSERT_TRUE(in.has_value()) << "server got nothing";
  EXPECT_EQ(in->message.envelope().hello().client(), "round-trip");
  wire::Envelope reply;
  reply.mutable_hello_reply()->set_worker("w");
  ASSERT_TRUE(server.send(in->peer, reply).ok());
  auto back = receive_within(client, 2000ms);
  ASSERT_TRUE(back.has_value()) << "client got no reply";
  EXPECT_EQ(back->envelope().hello_reply().worker(), "w");
}

// A client that sent a message must learn within ~2 s that it was refused, while the server sees nothing.
void expect_refused(Server& server, Client& client) {
  ASSERT_TRUE(client.send(hello("intruder")).ok());
  const auto deadline = Clock::now() + 2s;
  while (!client.disconnected() && Clock::now() < deadline) {
    EXPECT_FALSE(receive_within(server, 50ms).has_value()) << "the server received a message from a refused client";
  }
  EXPECT_TRUE(client.disconnected()) << "client did not notice the refusal within 2 s";
  EXPECT_FALSE(client.disconnect_reason().empty());
  EXPECT_FALSE(receive_within(server, 200ms).has_value());
  EXPECT_FALSE(receive_within(client, 100ms).has_value());
  EXPECT_EQ(server.rejected(), 0u);
}

TEST(NetTransport, SecureRoundTripWithMegabyteFrames) {
  const KeyPair server_keys = generate_keypair();
  const KeyPair client_keys = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0", secure(server_keys, {client_keys.public_key}));
  ASSERT_TRUE(server.ok()) << server.error();
  EXPECT_NE(port_of((*server)->endpoint()), 0);
  auto client = Client::connect((*server)->endpoint(), server_keys.public_key, secure(client_keys));
  ASSERT_TRUE(client.ok()) << client.error();

  constexpr size_t kMiB = 1 << 20;
  wire::Envelope step;
  step.mutable_step()->set_hidden_bytes(kMiB);
  std::vector<zmq::message_t> frames;
  frames.push_back(pattern_frame(kMiB, 1));
  frames.push_back(pattern_frame(kMiB, 2));
  ASSERT_TRUE((*client)->send(step, std::move(frames)).ok());

  auto in = receive_within(**server, 3000ms);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->peer_key, client_keys.public_key);
  EXPECT_EQ(in->peer_address, "127.0.0.1");
  EXPECT_TRUE(expect_frame_bytes(in->message, {kMiB, kMiB}).ok());
  EXPECT_TRUE(in->message.frames[0] == pattern_frame(kMiB, 1));
  EXPECT_TRUE(in->message.frames[1] == pattern_frame(kMiB, 2));

  wire::Envelope token;
  token.mutable_token()->set_token(99);
  ASSERT_TRUE((*server)->send(in->peer, token, frames_of(pattern_frame(kMiB, 3))).ok());
  auto back = receive_within(**client, 3000ms);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->envelope().token().token(), 99);
  ASSERT_EQ(back->frames.size(), 1u);
  EXPECT_TRUE(back->frames[0] == pattern_frame(kMiB, 3));
  EXPECT_FALSE((*client)->disconnected()) << (*client)->disconnect_reason();
}

TEST(NetTransport, UnknownClientKeyIsRefusedUntilAllowed) {
  const KeyPair server_keys = generate_keypair();
  const KeyPair stranger = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0", secure(server_keys, {generate_keypair().public_key}));
  ASSERT_TRUE(server.ok()) << server.error();
  {
    auto client = Client::connect((*server)->endpoint(), server_keys.public_key, secure(stranger));
    ASSERT_TRUE(client.ok()) << client.error();
    expect_refused(**server, **client);
    EXPECT_NE((*client)->disconnect_reason().find("refused our key"), std::string::npos)
        << (*client)->disconnect_reason();
  }
  (*server)->allow(stranger.public_key);
  auto client = Client::connect((*server)->endpoint(), server_keys.public_key, secure(stranger));
  ASSERT_TRUE(client.ok()) << client.error();
  expect_round_trip(**server, **client);
}

TEST(NetTransport, WrongPinnedServerKeyFails) {
  const KeyPair server_keys = generate_keypair();
  const KeyPair client_keys = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0", secure(server_keys, {client_keys.public_key}));
  ASSERT_TRUE(server.ok()) << server.error();
  auto client = Client::connect((*server)->endpoint(), generate_keypair().public_key, secure(client_keys));
  ASSERT_TRUE(client.ok()) << client.error();
  expect_refused(**server, **client);
}

TEST(NetTransport, InsecureOnlyOnLoopback) {
  for (const char* endpoint : {"tcp://*:0", "tcp://0.0.0.0:0"}) {
    auto server = Server::bind(endpoint, insecure());
    ASSERT_FALSE(server.ok()) << endpoint;
    EXPECT_NE(server.error().find("use CURVE keys"), std::string::npos) << server.error();
    EXPECT_NE(server.error().find("loopback"), std::string::npos) << server.error();
  }
  auto remote = Client::connect("tcp://192.0.2.1:5555", "", insecure());
  ASSERT_FALSE(remote.ok());
  EXPECT_NE(remote.error().find("use CURVE keys"), std::string::npos) << remote.error();

  auto server = Server::bind("tcp://127.0.0.1:0", insecure());
  ASSERT_TRUE(server.ok()) << server.error();
  auto client = Client::connect((*server)->endpoint(), "", insecure());
  ASSERT_TRUE(client.ok()) << client.error();
  expect_round_trip(**server, **client);

  Status unknown = (*server)->send("no-such-peer", hello("x"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("not connected"), std::string::npos) << unknown.message();
}

TEST(NetTransport, SecureEndpointsNeedValidKeys) {
  const KeyPair keys = generate_keypair();
  auto no_keys = Server::bind("tcp://127.0.0.1:0", SecurityOptions{});
  ASSERT_FALSE(no_keys.ok());
  EXPECT_NE(no_keys.error().find("own key pair"), std::string::npos) << no_keys.error();
  auto bad_allowed = Server::bind("tcp://127.0.0.1:0", secure(keys, {"not-a-key"}));
  ASSERT_FALSE(bad_allowed.ok());
  EXPECT_NE(bad_allowed.error().find("not-a-key"), std::string::npos) << bad_allowed.error();
  auto bad_pin = Client::connect("tcp://127.0.0.1:9", "short", secure(keys));
  ASSERT_FALSE(bad_pin.ok());
  EXPECT_NE(bad_pin.error().find("server key"), std::string::npos) << bad_pin.error();
}

// A TCP relay between a client and a server that records every byte passing through it.
class Relay {
 public:
  explicit Relay(int target_port) : target_port_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    EXPECT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  // Stops forwarding but keeps both connections open, like a peer that hangs or a cable pulled out.
  void freeze() { frozen_ = true; }
  std::string recorded() {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int a = accept(listen_fd_, nullptr, nullptr);
      if (a < 0) continue;
      const int b = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in target{};
      target.sin_family = AF_INET;
      target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      target.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (connect(b, reinterpret_cast<sockaddr*>(&target), sizeof(target)) == 0) pump(a, b);
      close(a);
      close(b);
    }
  }
  // Copies both ways until either side closes or the relay stops.
  void pump(int a, int b) {
    std::vector<char> buffer(1 << 16);
    while (!stop_) {
      if (frozen_) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = read(p[i].fd, buffer.data(), buffer.size());
        if (n <= 0) return;
        {
          std::lock_guard lock(mu_);
          bytes_.append(buffer.data(), static_cast<size_t>(n));
        }
        const int out = i == 0 ? b : a;
        for (ssize_t sent = 0; sent < n;) {
          const ssize_t w = write(out, buffer.data() + sent, static_cast<size_t>(n - sent));
          if (w <= 0) return;
          sent += w;
        }
      }
    }
  }

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> frozen_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string bytes_;
};

constexpr uint32_t kMarker = 0x7A6B5C4D;
constexpr float kFloatPattern[4] = {1.5f, -2.25f, 0.001f, 12345.678f};

std::string varint(uint64_t v) {
  std::string out;
  for (; v >= 0x80; v >>= 7) out += static_cast<char>((v & 0x7F) | 0x80);
  out += static_cast<char>(v);
  return out;
}

struct Patterns {
  std::string marker_raw;     // the marker as a fixed32 field (SamplerParams.temp)
  std::string marker_tokens;  // four tokens equal to the marker, as packed varints
  std::string floats;         // the tensor frame pattern
  std::string request_text;   // a string field sent by the client
  std::string reply_text;     // a string field sent by the server
};

Patterns wire_patterns() {
  Patterns p;
  p.marker_raw.assign(reinterpret_cast<const char*>(&kMarker), sizeof(kMarker));
  for (int i = 0; i < 4; ++i) p.marker_tokens += varint(kMarker);
  p.floats.assign(reinterpret_cast<const char*>(kFloatPattern), sizeof(kFloatPattern));
  p.request_text = "wire-capture-canary-from-client";
  p.reply_text = "wire-capture-canary-from-server";
  return p;
}

// Runs one request and reply through a recording relay and returns everything that crossed the wire.
std::string capture(bool plain_text) {
  const Patterns patterns = wire_patterns();
  const KeyPair server_keys = generate_keypair();
  const KeyPair client_keys = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0",
                             plain_text ? insecure() : secure(server_keys, {client_keys.public_key}));
  EXPECT_TRUE(server.ok()) << server.error();
  if (!server.ok()) return {};
  Relay relay(port_of((*server)->endpoint()));
  auto client = Client::connect("tcp://127.0.0.1:" + std::to_string(relay.port()), server_keys.public_key,
                                plain_text ? insecure() : secure(client_keys));
  EXPECT_TRUE(client.ok()) << client.error();
  if (!client.ok()) return {};

  constexpr size_t kFloats = 64 * 1024;
  zmq::message_t hidden(kFloats * sizeof(float));
  auto* f = static_cast<float*>(hidden.data());
  for (size_t i = 0; i < kFloats; ++i) f[i] = kFloatPattern[i % 4];
  wire::Envelope step;
  step.mutable_step()->set_hidden_bytes(hidden.size());
  for (int i = 0; i < 16; ++i) step.mutable_step()->add_tokens(static_cast<int32_t>(kMarker));
  step.mutable_step()->mutable_sampler()->set_temp(std::bit_cast<float>(kMarker));
  EXPECT_TRUE((*client)->send(step, frames_of(std::move(hidden))).ok());
  EXPECT_TRUE((*client)->send(hello(patterns.request_text)).ok());

  auto in = receive_within(**server, 2000ms);
  EXPECT_TRUE(in.has_value());
  auto in2 = receive_within(**server, 2000ms);
  EXPECT_TRUE(in2.has_value());
  if (!in || !in2) return {};
  EXPECT_EQ(in2->message.envelope().hello().client(), patterns.request_text);
  wire::Envelope reply;
  reply.mutable_error()->set_message(patterns.reply_text);
  EXPECT_TRUE((*server)->send(in->peer, reply).ok());
  EXPECT_TRUE(receive_within(**client, 2000ms).has_value());
  return relay.recorded();
}

TEST(NetTransport, WireCaptureShowsNoPayloadWhenEncrypted) {
  const Patterns p = wire_patterns();
  const std::string plain = capture(/*plain_text=*/true);
  // The same capture without encryption must find every pattern, or the check below proves nothing.
  EXPECT_NE(plain.find(p.marker_raw), std::string::npos);
  EXPECT_NE(plain.find(p.marker_tokens), std::string::npos);
  EXPECT_NE(plain.find(p.floats), std::string::npos);
  EXPECT_NE(plain.find(p.request_text), std::string::npos);
  EXPECT_NE(plain.find(p.reply_text), std::string::npos);

  const std::string encrypted = capture(/*plain_text=*/false);
  EXPECT_GT(encrypted.size(), 64 * 1024 * sizeof(float)) << "the traffic did not go through the relay";
  EXPECT_EQ(encrypted.find(p.marker_raw), std::string::npos);
  EXPECT_EQ(encrypted.find(p.marker_tokens), std::string::npos);
  EXPECT_EQ(encrypted.find(p.floats), std::string::npos);
  EXPECT_EQ(encrypted.find(p.request_text), std::string::npos);
  EXPECT_EQ(encrypted.find(p.reply_text), std::string::npos);
}

// Sends raw parts from a plain DEALER, as a buggy or hostile peer would.
void send_raw(zmq::socket_t& dealer, std::vector<zmq::message_t> parts) {
  for (size_t i = 0; i < parts.size(); ++i) {
    ASSERT_TRUE(dealer.send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none));
  }
}

zmq::socket_t raw_dealer(const std::string& endpoint) {
  zmq::socket_t dealer(context(), zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint);
  return dealer;
}

// Waits until the server counts one more rejection; it must not deliver anything meanwhile.
void expect_rejection(Server& server, uint64_t before) {
  const auto deadline = Clock::now() + 2s;
  while (server.rejected() == before && Clock::now() < deadline) {
    EXPECT_FALSE(receive_within(server, 50ms).has_value());
  }
  EXPECT_EQ(server.rejected(), before + 1);
}

void expect_hello(Server& server, const std::string& name) {
  auto in = receive_within(server, 2000ms);
  ASSERT_TRUE(in.has_value()) << "the server stopped serving";
  EXPECT_EQ(in->message.envelope().hello().client(), name);
}

TEST(NetTransport, MalformedAndOversizedMessagesAreDroppedAndServingGoesOn) {
  Limits limits;
  limits.max_envelope_bytes = 4096;
  limits.max_frame_bytes = 1024;
  limits.max_frames = 2;
  auto server = Server::bind("tcp://127.0.0.1:0", insecure(), limits);
  ASSERT_TRUE(server.ok()) << server.error();
  Server& s = **server;
  zmq::socket_t dealer = raw_dealer(s.endpoint());

  std::vector<zmq::message_t> garbage;
  garbage.emplace_back(std::string("\xff\xfe not an envelope"));
  send_raw(dealer, std::move(garbage));
  expect_rejection(s, 0);
  send_raw(dealer, encode(hello("after-garbage"), {}));
  expect_hello(s, "after-garbage");

  wire::Envelope future = hello("from-the-future");
  future.set_version(2);
  std::vector<zmq::message_t> versioned;
  versioned.emplace_back(future.SerializeAsString());
  send_raw(dealer, std::move(versioned));
  expect_rejection(s, 1);

  // Above max_frame_bytes but within what libzmq admits (the envelope limit): the codec drops it.
  send_raw(dealer, encode(hello("big"), frames_of(pattern_frame(2048, 0))));
  expect_rejection(s, 2);
  send_raw(dealer, encode(hello("after-big-frame"), {}));
  expect_hello(s, "after-big-frame");

  // Above every limit: libzmq cuts the connection before allocating it; the server never sees it.
  send_raw(dealer, encode(hello("huge"), frames_of(pattern_frame(8192, 0))));
  EXPECT_FALSE(receive_within(s, 300ms).has_value());
  EXPECT_EQ(s.rejected(), 3u);
  zmq::socket_t fresh = raw_dealer(s.endpoint());
  send_raw(fresh, encode(hello("after-huge-frame"), {}));
  expect_hello(s, "after-huge-frame");
}

TEST(NetTransport, ClientNoticesServerGone) {
  const KeyPair server_keys = generate_keypair();
  const KeyPair client_keys = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0", secure(server_keys, {client_keys.public_key}));
  ASSERT_TRUE(server.ok()) << server.error();
  auto client = Client::connect((*server)->endpoint(), server_keys.public_key, secure(client_keys));
  ASSERT_TRUE(client.ok()) << client.error();
  expect_round_trip(**server, **client);
  ASSERT_FALSE((*client)->disconnected());

  server.value().reset();
  const auto start = Clock::now();
  while (!(*client)->disconnected() && Clock::now() - start < 5s) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE((*client)->disconnected()) << "not noticed within 5 s";
  EXPECT_FALSE(receive_within(**client, 100ms).has_value());
}

// No FIN, no RST: only the heartbeats can tell that the server stopped answering.
TEST(NetTransport, ClientNoticesSilentServerByHeartbeat) {
  const KeyPair server_keys = generate_keypair();
  const KeyPair client_keys = generate_keypair();
  auto server = Server::bind("tcp://127.0.0.1:0", secure(server_keys, {client_keys.public_key}));
  ASSERT_TRUE(server.ok()) << server.error();
  Relay relay(port_of((*server)->endpoint()));
  auto client = Client::connect("tcp://127.0.0.1:" + std::to_string(relay.port()), server_keys.public_key,
                                secure(client_keys));
  ASSERT_TRUE(client.ok()) << client.error();
  expect_round_trip(**server, **client);

  relay.freeze();
  const auto start = Clock::now();
  while (!(*client)->disconnected() && Clock::now() - start < 6s) std::this_thread::sleep_for(20ms);
  const auto noticed = Clock::now() - start;
  EXPECT_TRUE((*client)->disconnected()) << "a silent server was not noticed within 6 s";
  // The next PING goes out within 0.5 s and its 2 s timeout ends the link (plus scheduling slack
  // on a loaded machine).
  EXPECT_LE(noticed, 2800ms) << "noticed later than the heartbeat interval and timeout allow";
  EXPECT_GE(noticed, 1500ms) << "noticed before the heartbeat timeout: " << (*client)->disconnect_reason();
}

}  // namespace
}  // namespace ll::net
