#pragma once
// The one-time code a head shows and a worker types (or scans) to pair with it, and the
// cryptography built on it.
//
// A code carries 20 bytes, written as 32 characters of Crockford base32 after "LL1-", in
// groups of four (LL1-XXXX-XXXX-...; 0/O and 1/I/L read alike, case and dashes ignored):
//   IPv4 address (4) | port (2) | link id (4) | slot (1) | secret (8) | check (1)
// - address and port: where `lingualinked pair` listens.
// - link id: the pairing link's CURVE server key is derived from it, so a worker with the
//   code knows the key to pin and nobody without it can take part or listen in.
// - slot: which of the codes of one `pair` run this is.
// - secret: 64 random bits, never sent; each side proves it holds it with a MAC over both
//   long-term public keys and both sides' fresh nonces (pairing_mac).
// - check: catches typing mistakes before any connection is made.
// The same bytes as "LINGUALINKED:" + 32 characters form a string in QR's alphanumeric mode.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/keys.h"

namespace ll::cluster {

struct PairingCode {
  std::array<uint8_t, 4> ipv4{};
  uint16_t port = 0;
  std::array<uint8_t, 4> link_id{};
  uint8_t slot = 0;
  std::array<uint8_t, 8> secret{};
};

// A code with a fresh link id and secret (random bytes from libsodium).
PairingCode new_pairing_code(std::array<uint8_t, 4> ipv4, uint16_t port, std::array<uint8_t, 4> link_id, uint8_t slot);
std::array<uint8_t, 4> new_link_id();

std::string format_pairing_code(const PairingCode& code);  // "LL1-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX"
std::string qr_pairing_string(const PairingCode& code);    // "LINGUALINKED:XXXXXXXX..."
// Either form; refuses a wrong length, a character outside the alphabet or a failed check.
Result<PairingCode> parse_pairing_code(std::string_view text);

std::string pairing_endpoint(const PairingCode& code);  // tcp://A.B.C.D:PORT
// The pairing link's server key pair, derived from the link id.
net::KeyPair pairing_link_keys(const std::array<uint8_t, 4>& link_id);

// What both proofs of one pairing cover.
struct PairingTranscript {
  std::string head_key;     // Z85, the head's long-term key
  std::string worker_key;   // Z85, the worker's long-term key (its CURVE client key on the link)
  std::string signing_key;  // 32 bytes, the worker's beacon-signing key
  std::string worker_nonce; // 32 bytes
  std::string head_nonce;   // 32 bytes
};
enum class PairingRole { kWorker, kHead };
constexpr size_t kPairingNonceBytes = 32;
constexpr size_t kPairingMacBytes = 32;
// keyed BLAKE2b under a key derived from the code's secret (and link id and slot), over the role
// and the transcript, each field length-prefixed.
std::string pairing_mac(const PairingCode& code, PairingRole role, const PairingTranscript& t);
// Constant-time comparison of a received MAC with the expected one.
bool pairing_mac_matches(const std::string& received, const std::string& expected);
std::string random_nonce();

}  // namespace ll::cluster
