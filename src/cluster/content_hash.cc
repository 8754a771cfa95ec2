#include "cluster/content_hash.h"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace ll::cluster {
namespace {

std::string to_hex(const unsigned char (&digest)[crypto_hash_sha256_BYTES]) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * crypto_hash_sha256_BYTES);
  for (unsigned char c : digest) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Idempotent and thread-safe; picks libsodium's implementations once.
void init_sodium() {
  static const int ready = sodium_init();
  (void)ready;
}

}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  init_sodium();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status::Errorf("{}: {}", path, std::strerror(errno));
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<unsigned char> buffer(size_t{1} << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f.get())) > 0) crypto_hash_sha256_update(&state, buffer.data(), n);
  if (std::ferror(f.get())) return Status::Errorf("{}: read error", path);
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, digest);
  return to_hex(digest);
}

bool is_content_hash(std::string_view s) {
  if (s.size() != 2 * crypto_hash_sha256_BYTES) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace ll::cluster
