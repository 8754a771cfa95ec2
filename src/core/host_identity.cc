#include "core/host_identity.h"

#include <unistd.h>

#include <fstream>

namespace ll {

std::string host_identity() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) name[0] = '\0';
  std::string machine_id;
  std::ifstream("/etc/machine-id") >> machine_id;
  return std::string(name) + "|" + machine_id;
}

}  // namespace ll
