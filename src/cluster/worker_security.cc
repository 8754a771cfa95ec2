#include "cluster/worker_security.h"

#include "net/keys.h"

namespace ll::cluster {

Result<net::SecurityOptions> worker_security(const WorkerSecuritySetup& setup) {
  net::SecurityOptions s;
  s.insecure = setup.insecure;
  if (setup.insecure) return s;
  if (setup.key_path.empty()) {
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
