#include "cluster/pairing_code.h"

#include <fmt/format.h>
#include <sodium.h>
#include <zmq.h>

#include <cctype>

#include "core/check.h"

namespace ll::cluster {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32
constexpr std::string_view kPrefix = "LL1";
constexpr std::string_view kQrPrefix = "LINGUALINKED:";
constexpr size_t kBytes = 20;
constexpr size_t kChars = 32;  // 160 bits

using Bytes = std::array<uint8_t, kBytes>;

void init_sodium() { LL_CHECK(sodium_init() >= 0); }

uint8_t check_byte(const uint8_t* data, size_t n) {
  uint8_t hash[crypto_generichash_BYTES_MIN];
  crypto_generichash(hash, sizeof hash, data, n, nullptr, 0);
  return hash[0];
}

Bytes to_bytes(const PairingCode& c) {
  Bytes b{};
  size_t i = 0;
  for (uint8_t v : c.ipv4) b[i++] = v;
  b[i++] = static_cast<uint8_t>(c.port >> 8);
  b[i++] = static_cast<uint8_t>(c.port & 0xff);
  for (uint8_t v : c.link_id) b[i++] = v;
  b[i++] = c.slot;
  for (uint8_t v : c.secret) b[i++] = v;
  b[i] = check_byte(b.data(), i);
  return b;
}

std::string base32(const Bytes& b) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t v : b) {
    acc = (acc << 8) | v;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;  // 160 bits: no remainder
}

// The value of a base32 character, read leniently as Crockford allows; -1 if none.
int digit(char c) {
  c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (c == 'O') c = '0';
  if (c == 'I' || c == 'L') c = '1';
  const size_t at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

void append_field(std::string& out, std::string_view field) {
  const uint32_t n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  out.append(field);
}

}  // namespace

std::array<uint8_t, 4> new_link_id() {
  init_sodium();
  std::array<uint8_t, 4> id{};
  randombytes_buf(id.data(), id.size());
  return id;
}

PairingCode new_pairing_code(std::array<uint8_t, 4> ipv4, uint16_t port, std::array<uint8_t, 4> link_id, uint8_t slot) {
  init_sodium();
  PairingCode c;
  c.ipv4 = ipv4;
  c.port = port;
  c.link_id = link_id;
  c.slot = slot;
  randombytes_buf(c.secret.data(), c.secret.size());
  return c;
}

std::string format_pairing_code(const PairingCode& code) {
  const std::string chars = base32(to_bytes(code));
  std::string out(kPrefix);
  for (size_t i = 0; i < chars.size(); i += 4) out += "-" + chars.substr(i, 4);
  return out;
}

std::string qr_pairing_string(const PairingCode& code) { return std::string(kQrPrefix) + base32(to_bytes(code)); }

Result<PairingCode> parse_pairing_code(std::string_view text) {
  init_sodium();
  if (starts_with_nocase(text, kQrPrefix)) {
    text.remove_prefix(kQrPrefix.size());
  } else if (starts_with_nocase(text, kPrefix)) {
    text.remove_prefix(kPrefix.size());
  } else {
    return Status::Error("not a pairing code: it starts with LL1- (as `lingualinked pair` prints it)");
  }
  std::string chars;
  for (char c : text) {
    if (c == '-' || c == ' ') continue;
    if (digit(c) < 0) return Status::Errorf("not a pairing code: '{}' is not one of its characters", c);
    chars += c;
  }
  if (chars.size() != kChars) {
    return Status::Errorf("not a pairing code: {} characters after LL1-, expected {}", chars.size(), kChars);
  }
  Bytes b{};
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : chars) {
    acc = (acc << 5) | static_cast<uint32_t>(digit(c));
    bits += 5;
    if (bits >= 8) {
      b[n++] = static_cast<uint8_t>((acc >> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  if (b[kBytes - 1] != check_byte(b.data(), kBytes - 1)) {
    return Status::Error("the pairing code has a typing mistake (its check does not match): copy it again");
  }
  PairingCode c;
  size_t i = 0;
  for (uint8_t& v : c.ipv4) v = b[i++];
  c.port = static_cast<uint16_t>((b[i] << 8) | b[i + 1]);
  i += 2;
  for (uint8_t& v : c.link_id) v = b[i++];
  c.slot = b[i++];
  for (uint8_t& v : c.secret) v = b[i++];
  if (c.port == 0) return Status::Error("not a pairing code: port 0");
  return c;
}

std::string pairing_endpoint(const PairingCode& code) {
  return fmt::format("tcp://{}.{}.{}.{}:{}", code.ipv4[0], code.ipv4[1], code.ipv4[2], code.ipv4[3], code.port);
}

net::KeyPair pairing_link_keys(const std::array<uint8_t, 4>& link_id) {
  init_sodium();
  constexpr std::string_view kLabel = "lingualinked pairing link v1";
  std::string input(kLabel);
  input.append(reinterpret_cast<const char*>(link_id.data()), link_id.size());
  uint8_t seed[crypto_box_SEEDBYTES];
  crypto_generichash(seed, sizeof seed, reinterpret_cast<const uint8_t*>(input.data()), input.size(), nullptr, 0);
  uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
  crypto_box_seed_keypair(pk, sk, seed);
  char pk_z85[41], sk_z85[41];
  LL_CHECK(zmq_z85_encode(pk_z85, pk, sizeof pk) != nullptr);
  LL_CHECK(zmq_z85_encode(sk_z85, sk, sizeof sk) != nullptr);
  sodium_memzero(sk, sizeof sk);
  return {pk_z85, sk_z85};
}

std::string pairing_mac(const PairingCode& code, PairingRole role, const PairingTranscript& t) {
  init_sodium();
  // The MAC key: the secret, bound to this run's link id and this code's slot.
  std::string key_input = "lingualinked pairing secret v1";
  key_input.append(reinterpret_cast<const char*>(code.link_id.data()), code.link_id.size());
  key_input += static_cast<char>(code.slot);
  key_input.append(reinterpret_cast<const char*>(code.secret.data()), code.secret.size());
  uint8_t key[crypto_generichash_KEYBYTES];
  crypto_generichash(key, sizeof key, reinterpret_cast<const uint8_t*>(key_input.data()), key_input.size(), nullptr, 0);
  std::string message;
  append_field(message, role == PairingRole::kWorker ? "worker proves" : "head proves");
  for (const std::string* f : {&t.head_key, &t.worker_key, &t.signing_key, &t.worker_nonce, &t.head_nonce}) {
    append_field(message, *f);
  }
  std::string mac(kPairingMacBytes, '\0');
  crypto_generichash(reinterpret_cast<uint8_t*>(mac.data()), mac.size(), reinterpret_cast<const uint8_t*>(message.data()),
                     message.size(), key, sizeof key);
  sodium_memzero(key, sizeof key);
  return mac;
}

bool pairing_mac_matches(const std::string& received, const std::string& expected) {
  return received.size() == expected.size() && sodium_memcmp(received.data(), expected.data(), expected.size()) == 0;
}

std::string random_nonce() {
  init_sodium();
  std::string n(kPairingNonceBytes, '\0');
  randombytes_buf(n.data(), n.size());
  return n;
}

}  // namespace ll::cluster
