#pragma once
// CURVE key pairs (Z85 text, 40 characters each) and the files they live in.
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace ll::net {

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

KeyPair generate_keypair();
// Key file format: two lines, "public <Z85>" and "secret <Z85>"; written with mode 0600.
Status save_keypair(const std::string& path, const KeyPair& keys);
// Load refuses files that group or others can read (like ssh) and checks that the keys belong together.
Result<KeyPair> load_keypair(const std::string& path);
// The same two lines from `content`; errors begin with `origin` (the file, or where else they came from).
Result<KeyPair> parse_keypair(const std::string& content, const std::string& origin);
// One Z85 public key per line; '#' comments and blank lines ignored. Each key is validated.
Result<std::set<std::string>> load_allowed_keys(const std::string& path);
bool is_valid_z85_key(const std::string& key);
// Public keys in order: "KEY,KEY,..." or a file with one key per line ('#' lines ignored).
Result<std::vector<std::string>> parse_public_key_list(const std::string& text);
// Both keys valid Z85 and the public key derived from the secret one.
Status validate_keypair(const KeyPair& keys);

}  // namespace ll::net
