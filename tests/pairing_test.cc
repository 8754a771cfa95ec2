// Pairing codes: their format, and the exchange over a real loopback link: a good code pairs
// once, and a wrong, reused or expired code is refused.
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>

#include "cluster/beacon.h"
#include "cluster/pairing.h"
#include "cluster/pairing_code.h"

namespace ll::cluster {
namespace {

PairingCode sample_code() { return new_pairing_code({192, 168, 1, 20}, 7071, new_link_id(), 3); }

TEST(PairingCode, RoundTripsInBothForms) {
  const PairingCode code = sample_code();
  const std::string text = format_pairing_code(code);
  ASSERT_EQ(text.size(), 4u + 8 * 5 - 1) << text;  // LL1- and 8 groups of 4 joined by dashes
  EXPECT_EQ(text.rfind("LL1-", 0), 0u);
  const std::string qr = qr_pairing_string(code);
  EXPECT_EQ(qr.rfind("LINGUALINKED:", 0), 0u);
  // QR's alphanumeric mode: digits, capitals and " $%*+-./:" only.
  EXPECT_EQ(qr.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"), std::string::npos) << qr;
  for (const std::string& form : {text, qr}) {
    auto parsed = parse_pairing_code(form);
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    EXPECT_EQ(parsed->ipv4, code.ipv4);
    EXPECT_EQ(parsed->port, code.port);
    EXPECT_EQ(parsed->link_id, code.link_id);
    EXPECT_EQ(parsed->slot, code.slot);
    EXPECT_EQ(parsed->secret, code.secret);
  }
  EXPECT_EQ(pairing_endpoint(code), "tcp://192.168.1.20:7071");
}

TEST(PairingCode, ReadsLeniently) {
  const PairingCode code = sample_code();
  std::string text = format_pairing_code(code);
  std::string lower;
  for (char c : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto parsed = parse_pairing_code(lower);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->secret, code.secret);
  // 0 typed as O, spaces for dashes.
  std::string typed = text;
  for (size_t i = 4; i < typed.size(); ++i) {
    if (typed[i] == '0') typed[i] = 'O';
    if (typed[i] == '-') typed[i] = ' ';
  }
  parsed = parse_pairing_code(typed);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->secret, code.secret);
}

TEST(PairingCode, RefusesMalformedCodes) {
  const std::string text = format_pairing_code(sample_code());
  EXPECT_NE(parse_pairing_code("hello").error().find("starts with LL1-"), std::string::npos);
  EXPECT_NE(parse_pairing_code(text.substr(0, text.size() - 1)).error().find("31 characters"), std::string::npos);
  EXPECT_NE(parse_pairing_code(text + "A").error().find("33 characters"), std::string::npos);
  EXPECT_NE(parse_pairing_code("LL1-UUUU").error().find("'U'"), std::string::npos);
  // One character changed: the check catches it (a single change alters the checked bytes).
  int caught = 0;
  for (size_t i = 4; i < text.size(); ++i) {
    if (text[i] == '-') continue;
    std::string typo = text;
    typo[i] = typo[i] == '7' ? '8' : '7';
    caught += parse_pairing_code(typo).ok() ? 0 : 1;
  }
  EXPECT_GE(caught, 28);  // the check byte is 8 bits: now and then a typo slips through
}

TEST(PairingCode, MacsDependOnEverySecretAndKey) {
  const PairingCode code = sample_code();
  PairingTranscript t{net::generate_keypair().public_key, net::generate_keypair().public_key, std::string(32, 's'),
                      random_nonce(), random_nonce()};
  const std::string mac = pairing_mac(code, PairingRole::kWorker, t);
  EXPECT_EQ(mac.size(), kPairingMacBytes);
  EXPECT_TRUE(pairing_mac_matches(mac, pairing_mac(code, PairingRole::kWorker, t)));
  EXPECT_FALSE(pairing_mac_matches(mac, pairing_mac(code, PairingRole::kHead, t)));
  PairingCode other = code;
  other.secret[0] ^= 1;
  EXPECT_FALSE(pairing_mac_matches(mac, pairing_mac(other, PairingRole::kWorker, t)));
  PairingTranscript swapped = t;
  swapped.head_key = net::generate_keypair().public_key;
  EXPECT_FALSE(pairing_mac_matches(mac, pairing_mac(code, PairingRole::kWorker, swapped)));
  swapped = t;
  swapped.head_nonce = random_nonce();
  EXPECT_FALSE(pairing_mac_matches(mac, pairing_mac(code, PairingRole::kWorker, swapped)));
  EXPECT_FALSE(pairing_mac_matches(mac.substr(1), mac));
}

// A pairing server on loopback, polled on a thread of its own until destroyed.
class RunningPairing {
 public:
  RunningPairing(size_t codes, std::chrono::milliseconds ttl) {
    PairingOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.codes = codes;
    o.ttl = ttl;
    o.head_keys = head_keys;
    o.head_name = "test-head";
    o.on_paired = [this](const PairedDevice& d) {
      std::lock_guard lock(mu_);
      paired_.push_back(d);
      return Status::Ok();
    };
    o.log = [this](const std::string& line) {
      std::lock_guard lock(mu_);
      log_ += line + "\n";
    };
    auto s = PairingServer::start(std::move(o));
    EXPECT_TRUE(s.ok()) << s.error();
    if (!s.ok()) return;
    server_ = std::move(s).value();
    codes_ = server_->codes();
    thread_ = std::thread([this] {
      while (!stop_.load()) (void)server_->poll(std::chrono::milliseconds(50));
    });
  }
  ~RunningPairing() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<PairingCode>& codes() const { return codes_; }
  std::vector<PairedDevice> paired() {
    std::lock_guard lock(mu_);
    return paired_;
  }
  std::string log() {
    std::lock_guard lock(mu_);
    return log_;
  }

  const net::KeyPair head_keys = net::generate_keypair();

 private:
  std::unique_ptr<PairingServer> server_;
  std::vector<PairingCode> codes_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<PairedDevice> paired_;
  std::string log_;
};

JoinRequest request(const std::string& name) {
  JoinRequest r;
  r.name = name;
  r.port = 7070;
  r.threads = 2;
  r.memory_limit = 1 << 30;
  r.timeout = std::chrono::seconds(5);
  return r;
}

TEST(Pairing, AGoodCodePairsOnceAndBothSidesLearnTheOthersKeys) {
  RunningPairing head(2, std::chrono::minutes(1));
  ASSERT_EQ(head.codes().size(), 2u);
  EXPECT_EQ(head.codes()[0].ipv4, (std::array<uint8_t, 4>{127, 0, 0, 1}));
  const net::KeyPair worker = net::generate_keypair();
  auto joined = join_head(head.codes()[0], worker, request("w1"));
  ASSERT_TRUE(joined.ok()) << joined.error();
  EXPECT_EQ(joined->public_key, head.head_keys.public_key);
  EXPECT_EQ(joined->name, "test-head");
  const auto paired = head.paired();
  ASSERT_EQ(paired.size(), 1u);
  EXPECT_EQ(paired[0].name, "w1");
  EXPECT_EQ(paired[0].public_key, worker.public_key);
  EXPECT_EQ(paired[0].signing_key, beacon_signing_keys(worker).public_key);
  EXPECT_EQ(paired[0].endpoint, "tcp://127.0.0.1:7070");
  EXPECT_EQ(paired[0].threads, 2u);

  // Used: refused, to another device and to the same one.
  auto again = join_head(head.codes()[0], net::generate_keypair(), request("w2"));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().find("already used"), std::string::npos) << again.error();
  EXPECT_NE(head.log().find("already used"), std::string::npos) << head.log();
  // The other code still pairs.
  auto second = join_head(head.codes()[1], net::generate_keypair(), request("w2"));
  ASSERT_TRUE(second.ok()) << second.error();
  EXPECT_EQ(head.paired().size(), 2u);
}

TEST(Pairing, AWrongSecretIsRefusedAndThreeRevokeEveryCode) {
  RunningPairing head(2, std::chrono::minutes(1));
  for (int attempt = 0; attempt < 3; ++attempt) {
    PairingCode wrong = head.codes()[0];
    wrong.secret[attempt] ^= 0x40;
    auto joined = join_head(wrong, net::generate_keypair(), request("guesser"));
    ASSERT_FALSE(joined.ok());
    EXPECT_NE(joined.error().find("wrong code"), std::string::npos) << joined.error();
  }
  EXPECT_NE(head.log().find("wrong code"), std::string::npos) << head.log();
  EXPECT_NE(head.log().find("revoked"), std::string::npos) << head.log();
  // Even the right code is refused now.
  auto right = join_head(head.codes()[1], net::generate_keypair(), request("w1"));
  ASSERT_FALSE(right.ok());
  EXPECT_NE(right.error().find("revoked"), std::string::npos) << right.error();
  EXPECT_TRUE(head.paired().empty());
}

TEST(Pairing, AnExpiredCodeIsRefused) {
  RunningPairing head(1, std::chrono::milliseconds(300));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto joined = join_head(head.codes()[0], net::generate_keypair(), request("late"));
  ASSERT_FALSE(joined.ok());
  EXPECT_NE(joined.error().find("expired"), std::string::npos) << joined.error();
  EXPECT_NE(head.log().find("expired"), std::string::npos) << head.log();
  EXPECT_TRUE(head.paired().empty());
}

TEST(Pairing, ACodeOfAnotherRunFindsNoServerToTrust) {
  RunningPairing head(1, std::chrono::minutes(1));
  // Same address and port, another link id: the worker pins a key the server does not hold.
  PairingCode other = head.codes()[0];
  other.link_id[0] ^= 1;
  JoinRequest r = request("lost");
  r.timeout = std::chrono::milliseconds(1500);
  auto joined = join_head(other, net::generate_keypair(), r);
  ASSERT_FALSE(joined.ok());
  EXPECT_TRUE(head.paired().empty());
}

}  // namespace
}  // namespace ll::cluster
