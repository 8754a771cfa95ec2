#include "cluster/content_hash.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/regular_file.h"

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
  LL_ASSIGN_OR_RETURN(RegularFile file, RegularFile::open(path));
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<unsigned char> buffer(size_t{1} << 20);
  while (true) {
    const ssize_t n = ::read(file.fd(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Errorf("{}: read error: {}", path, std::strerror(errno));
    if (n == 0) break;
    crypto_hash_sha256_update(&state, buffer.data(), static_cast<size_t>(n));
  }
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
