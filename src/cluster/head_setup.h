#pragma once
// A head's options from what its user gives: the workers' endpoints and public keys, and the
// head's own key pair file.
#include <string>
#include <vector>

#include "cluster/head.h"
#include "core/status.h"

namespace ll::cluster {

struct HeadSetup {
  std::vector<std::string> workers;  // HOST:PORT or tcp://HOST:PORT, in pipeline order
  std::string worker_keys;           // KEY,KEY,... or a file with one key per line, in worker order
  std::string key_path;              // the head's key pair file (not with insecure)
  bool insecure = false;             // plain-text links, no keys
};

// The workers with their pinned keys and the head's key pair; no workers: no keys are read.
Result<HeadOptions> head_options(const HeadSetup& setup);

}  // namespace ll::cluster
