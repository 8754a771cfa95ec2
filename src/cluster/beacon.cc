#include "cluster/beacon.h"

#include <sodium.h>
#include <zmq.h>

#include <chrono>
#include <cstring>

#include "core/check.h"

namespace ll::cluster {
namespace {

constexpr std::string_view kMagic = "LLB1";
constexpr size_t kSignedBytes = kBeaconBytes - crypto_sign_BYTES;

void put(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
  return v;
}

}  // namespace

int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

BeaconSigningKeys beacon_signing_keys(const net::KeyPair& keys) {
  LL_CHECK(sodium_init() >= 0);
  uint8_t curve_secret[32];
  LL_CHECK(zmq_z85_decode(curve_secret, keys.secret_key.c_str()) != nullptr);
  constexpr std::string_view kLabel = "lingualinked beacon signing key v1";
  uint8_t seed[crypto_sign_SEEDBYTES];
  crypto_generichash(seed, sizeof seed, reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size(), curve_secret,
                     sizeof curve_secret);
  BeaconSigningKeys out{std::string(crypto_sign_PUBLICKEYBYTES, '\0'), std::string(crypto_sign_SECRETKEYBYTES, '\0')};
  crypto_sign_seed_keypair(reinterpret_cast<uint8_t*>(out.public_key.data()), reinterpret_cast<uint8_t*>(out.secret_key.data()),
                           seed);
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(curve_secret, sizeof curve_secret);
  return out;
}

std::string sign_beacon(const Beacon& b, const BeaconSigningKeys& keys) {
  uint8_t key[32];
  LL_CHECK(zmq_z85_decode(key, b.public_key.c_str()) != nullptr);
  std::string packet(kMagic);
  packet.append(reinterpret_cast<const char*>(key), sizeof key);
  put(packet, b.port, 2);
  put(packet, b.threads, 2);
  put(packet, b.memory_limit, 8);
  put(packet, static_cast<uint64_t>(b.time_ms), 8);
  LL_CHECK(packet.size() == kSignedBytes);
  uint8_t sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const uint8_t*>(packet.data()), packet.size(),
                       reinterpret_cast<const uint8_t*>(keys.secret_key.data()));
  packet.append(reinterpret_cast<const char*>(sig), sizeof sig);
  return packet;
}

Result<Beacon> parse_beacon(std::string_view packet) {
  if (packet.size() != kBeaconBytes) return Status::Errorf("{} bytes, a beacon has {}", packet.size(), kBeaconBytes);
  if (packet.substr(0, kMagic.size()) != kMagic) return Status::Error("not a beacon (no LLB1)");
  Beacon b;
  char z85[41];
  if (zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(packet.data() + 4), 32) == nullptr) {
    return Status::Error("unreadable key");
  }
  b.public_key = z85;
  b.port = static_cast<uint16_t>(get(packet, 36, 2));
  b.threads = static_cast<uint16_t>(get(packet, 38, 2));
  b.memory_limit = get(packet, 40, 8);
  b.time_ms = static_cast<int64_t>(get(packet, 48, 8));
  if (b.port == 0) return Status::Error("port 0");
  return b;
}

bool beacon_signature_valid(std::string_view packet, const std::string& signing_public_key) {
  if (packet.size() != kBeaconBytes || signing_public_key.size() != crypto_sign_PUBLICKEYBYTES) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const uint8_t*>(packet.data() + kSignedBytes),
                                     reinterpret_cast<const uint8_t*>(packet.data()), kSignedBytes,
                                     reinterpret_cast<const uint8_t*>(signing_public_key.data())) == 0;
}

Result<Beacon> BeaconFilter::accept(std::string_view packet, const std::map<std::string, std::string>& signing_keys,
                                    int64_t now_ms) {
  LL_ASSIGN_OR_RETURN(Beacon b, parse_beacon(packet));
  const auto known = signing_keys.find(b.public_key);
  if (known == signing_keys.end()) return Status::Errorf("from {}, which is not paired", b.public_key);
  if (!beacon_signature_valid(packet, known->second)) return Status::Errorf("from {}: bad signature", b.public_key);
  // Clocks of devices differ a little: a beacon from up to max_age in the future is taken too.
  if (b.time_ms < now_ms - max_age_.count() || b.time_ms > now_ms + max_age_.count()) {
    return Status::Errorf("from {}: sent at {} ms, too far from now ({} ms): replayed or a wrong clock", b.public_key,
                          b.time_ms, now_ms);
  }
  auto [last, inserted] = last_time_.try_emplace(b.public_key, b.time_ms);
  if (!inserted) {
    if (b.time_ms <= last->second) return Status::Errorf("from {}: not newer than the last one: replayed", b.public_key);
    last->second = b.time_ms;
  }
  return b;
}

}  // namespace ll::cluster
