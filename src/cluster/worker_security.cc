#include "cluster/worker_security.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/keys.h"

namespace ll::cluster {
namespace {

// The key pair a parent wrote into a pipe before starting this process, so that it is never on disk.
Result<net::KeyPair> read_keypair_from(int fd) {
  const std::string origin = fmt::format("--key-fd {}", fd);
  std::string content;
  char buf[256];
  while (content.size() < 4096) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return Status::Errorf("{}: cannot read: {} (give a pipe this process inherits)", origin, std::strerror(error));
    }
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return net::parse_keypair(content, origin);
}

}  // namespace

Result<net::SecurityOptions> worker_security(const WorkerSecuritySetup& setup) {
  net::SecurityOptions s;
  s.insecure = setup.insecure;
  if (setup.insecure) return s;
  if (setup.key_fd >= 0 && !setup.key_path.empty()) return Status::Error("give --key or --key-fd, not both");
  if (setup.key_fd >= 0) {
    LL_ASSIGN_OR_RETURN(s.keys, read_keypair_from(setup.key_fd));
  } else if (setup.key_path.empty()) {
    s.keys = net::generate_keypair();
  } else {
    LL_ASSIGN_OR_RETURN(s.keys, net::load_keypair(setup.key_path));
  }
  for (const std::string& k : setup.allow) {
    if (!net::is_valid_z85_key(k)) return Status::Error("--allow " + k + ": not a Z85 public key");
    s.allowed.insert(k);
  }
  if (!setup.allow_file.empty()) {
    LL_ASSIGN_OR_RETURN(const auto keys, net::load_allowed_keys(setup.allow_file));
    s.allowed.insert(keys.begin(), keys.end());
  }
  if (s.allowed.empty()) {
    return Status::Error(
        "no head may connect: give its public key with --allow KEY or --allow-file FILE "
        "(or use --insecure on a loopback endpoint)");
  }
  return s;
}

}  // namespace ll::cluster
