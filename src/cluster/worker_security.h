#pragma once
// A worker's security from what its owner gives: its key pair (a file, a pipe from the process
// that started it, or a new one) and the
// public keys of the heads it allows, listed or in a file.
#include <string>
#include <vector>

#include "core/status.h"
#include "net/transport.h"

namespace ll::cluster {

struct WorkerSecuritySetup {
  std::string key_path;            // empty: a new key pair (or the one on key_fd)
  int key_fd = -1;                 // an inherited pipe holding the key pair, as a key file would; read and closed
  std::vector<std::string> allow;  // Z85 public keys
  std::string allow_file;          // one public key per line
  bool insecure = false;           // plain-text links, no keys (loopback only)
};

// Refuses a secure worker that no head could command.
Result<net::SecurityOptions> worker_security(const WorkerSecuritySetup& setup);

}  // namespace ll::cluster
