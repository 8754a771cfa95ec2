#include "net/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/check.h"
#include "core/private_file.h"
#include "core/regular_file.h"

namespace ll::net {
namespace {

constexpr size_t kZ85KeyChars = 40;  // 32 bytes, 5 characters per 4 bytes
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// Splits "word rest" at the first run of blanks.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  const auto end = s.find_first_of(" \t");
  if (end == std::string_view::npos) return {s, {}};
  return {s.substr(0, end), trim(s.substr(end))};
}

}  // namespace

KeyPair generate_keypair() {
  char public_key[kZ85KeyChars + 1];
  char secret_key[kZ85KeyChars + 1];
  // Fails only when libzmq was built without CURVE, which this project requires.
  LL_CHECK(zmq_curve_keypair(public_key, secret_key) == 0);
  return {public_key, secret_key};
}

bool is_valid_z85_key(const std::string& key) {
  if (key.size() != kZ85KeyChars) return false;
  if (key.find_first_not_of(kZ85Alphabet) != std::string::npos) return false;
  // The alphabet check alone admits groups of 5 characters above 2^32 - 1; the decoder rejects those.
  uint8_t decoded[32];
  return zmq_z85_decode(decoded, key.c_str()) != nullptr;
}

Status validate_keypair(const KeyPair& keys) {
  if (!is_valid_z85_key(keys.public_key)) return Status::Error("public key is not 40 characters of Z85");
  if (!is_valid_z85_key(keys.secret_key)) return Status::Error("secret key is not 40 characters of Z85");
  char derived[kZ85KeyChars + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0) {
    return Status::Errorf("cannot derive the public key: {}", zmq_strerror(zmq_errno()));
  }
  if (keys.public_key != derived) return Status::Error("public key does not belong to the secret key");
  return Status::Ok();
}

Status save_keypair(const std::string& path, const KeyPair& keys) {
  if (auto s = validate_keypair(keys); !s.ok()) return Status::Errorf("{}: refusing to save: {}", path, s.message());
  // Written next to the target and renamed over it, so a crash never leaves a half-written key
  // and the secret is never readable by others, not even for a moment.
  return write_private_file(path, "public " + keys.public_key + "\nsecret " + keys.secret_key + "\n");
}

Result<KeyPair> load_keypair(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Errorf("{}: cannot open: {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return Status::Errorf("{}: is a directory, not a key file (lingualinked keygen -o FILE)", path);
  // Like ssh: a secret key that others can read is no longer secret.
  if ((st.st_mode & 077) != 0) {
    return Status::Errorf("{}: permissions {:04o} are too open for a secret key; run chmod 600 {}", path,
                          st.st_mode & 07777, path);
  }
  LL_ASSIGN_OR_RETURN(const std::string content, read_regular_file(path));
  return parse_keypair(content, path);
}

Result<KeyPair> parse_keypair(const std::string& content, const std::string& path) {
  std::istringstream in(content);
  KeyPair keys;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    const auto [name, value] = split_word(text);
    std::string* slot = name == "public" ? &keys.public_key : name == "secret" ? &keys.secret_key : nullptr;
    if (slot == nullptr) {
      return Status::Errorf("{}:{}: expected \"public <key>\" or \"secret <key>\", got \"{}\"", path, number, name);
    }
    if (!slot->empty()) return Status::Errorf("{}:{}: duplicate {} key", path, number, name);
    // The value is never echoed: it may be the secret key.
    if (!is_valid_z85_key(std::string(value))) {
      return Status::Errorf("{}:{}: {} key is not 40 characters of Z85 (got {} characters)", path, number, name,
                            value.size());
    }
    *slot = value;
  }
  if (keys.public_key.empty()) return Status::Errorf("{}: no \"public\" line", path);
  if (keys.secret_key.empty()) return Status::Errorf("{}: no \"secret\" line", path);
  if (auto s = validate_keypair(keys); !s.ok()) return Status::Errorf("{}: {}", path, s.message());
  return keys;
}

Result<std::set<std::string>> load_allowed_keys(const std::string& path) {
  LL_ASSIGN_OR_RETURN(const std::string content, read_regular_file(path));
  std::istringstream in(content);
  std::set<std::string> keys;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string_view text = trim(line);
    // No valid key starts with '#' (its first group would exceed 2^32), so comments are unambiguous.
    if (text.empty() || text.front() == '#') continue;
    const auto [key, rest] = split_word(text);
    if (!is_valid_z85_key(std::string(key))) {
      return Status::Errorf("{}:{}: \"{}\" is not a public key (40 characters of Z85)", path, number, key);
    }
    if (!rest.empty() && rest.front() != '#') {
      return Status::Errorf("{}:{}: unexpected text after the key: \"{}\"", path, number, rest);
    }
    keys.emplace(key);
  }
  return keys;
}

Result<std::vector<std::string>> parse_public_key_list(const std::string& text) {
  std::vector<std::string> keys;
  std::error_code ec;
  if (std::filesystem::is_regular_file(text, ec)) {
    LL_ASSIGN_OR_RETURN(const std::string content, read_regular_file(text));
    std::istringstream in(content);
    std::string line;
    while (std::getline(in, line)) {
      const std::string_view key = trim(line);
      if (!key.empty() && key.front() != '#') keys.emplace_back(key);
    }
  } else {
    std::stringstream ss(text);
    std::string k;
    while (std::getline(ss, k, ',')) {
      if (!k.empty()) keys.push_back(k);
    }
  }
  for (const auto& k : keys) {
    if (!is_valid_z85_key(k)) return Status::Errorf("'{}' is not a Z85 public key", k);
  }
  return keys;
}

}  // namespace ll::net
