#pragma once
// A paired worker's "I am here" on the local network: a UDP multicast datagram signed with a
// key only it holds, which its head learnt when they paired.
//
// Layout, 120 bytes, integers big-endian:
//   "LLB1" | CURVE public key (32) | port (2) | threads (2) | memory limit (8) | unix time ms (8)
//   | Ed25519 signature (64) of everything before it
// The sender's address is the datagram's source address; the port is where the worker serves.
// A head takes a beacon only from a paired key, with a valid signature, no older than
// BeaconFilter's max age and newer than the last one it took from that key, so an old beacon
// replayed later is ignored.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/keys.h"

namespace ll::cluster {

inline constexpr char kBeaconGroup[] = "239.255.76.67";  // organization-local scope
inline constexpr uint16_t kBeaconPort = 7076;
inline constexpr size_t kBeaconBytes = 120;

struct BeaconSigningKeys {
  std::string public_key;  // 32 bytes
  std::string secret_key;  // 64 bytes (libsodium's Ed25519 secret key)
};
// Derived from the CURVE secret key, so that nothing more need be stored beside it.
BeaconSigningKeys beacon_signing_keys(const net::KeyPair& keys);

struct Beacon {
  std::string public_key;  // Z85
  uint16_t port = 0;
  uint16_t threads = 0;
  uint64_t memory_limit = 0;
  int64_t time_ms = 0;  // unix milliseconds when sent
};

std::string sign_beacon(const Beacon& beacon, const BeaconSigningKeys& keys);
// The fields of a well-formed packet, signature not checked.
Result<Beacon> parse_beacon(std::string_view packet);
bool beacon_signature_valid(std::string_view packet, const std::string& signing_public_key);

int64_t unix_millis();

// Which beacons a head believes. Not thread-safe.
class BeaconFilter {
 public:
  explicit BeaconFilter(std::chrono::milliseconds max_age = std::chrono::seconds(30)) : max_age_(max_age) {}
  // The beacon, or why it is ignored. `signing_keys`: the paired devices' signing keys by CURVE key.
  Result<Beacon> accept(std::string_view packet, const std::map<std::string, std::string>& signing_keys, int64_t now_ms);
  // A beacon of `key` sent at `time_ms` was taken before (by an earlier run): older ones are replays.
  void seen(const std::string& key, int64_t time_ms) { last_time_[key] = time_ms; }

 private:
  std::chrono::milliseconds max_age_;
  std::map<std::string, int64_t> last_time_;  // of the last beacon taken, by key
};

}  // namespace ll::cluster
