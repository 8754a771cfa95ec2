#pragma once
// Where a worker listens and the key it must prove it holds.
#include <string>

namespace ll::cluster {

struct WorkerAddress {
  std::string endpoint;    // tcp://host:port
  std::string public_key;  // Z85, pinned; unused when insecure
};

}  // namespace ll::cluster
