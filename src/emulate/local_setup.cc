#include "emulate/local_setup.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/thread_pool.h"

namespace ll::emulate {
namespace fs = std::filesystem;

int threads_per_device(int requested, size_t n_devices) {
  if (requested > 0) return requested;
  return std::max(1, default_thread_count() / static_cast<int>(std::max<size_t>(n_devices, 1)));
}

Result<LocalClusterOptions> local_cluster_options(const std::string& devices, int threads,
                                                  const std::string& run_name) {
  LocalClusterOptions o;
  LL_ASSIGN_OR_RETURN(o.devices, parse_devices(devices));
  std::error_code ec;
  // Started by a bundle's launcher (tools/bundle_launcher.sh), this process's executable is the
  // bundled dynamic loader: the workers are started through the launcher it names instead.
  if (const char* launcher = std::getenv("LINGUALINKED_LAUNCHER"); launcher != nullptr && *launcher != '\0') {
    o.cli_path = launcher;
  } else {
    o.cli_path = fs::read_symlink("/proc/self/exe", ec).string();
    if (ec) return Status::Error("cannot find this executable: " + ec.message());
  }
  o.default_threads = threads_per_device(threads, o.devices.size());
  const fs::path temp = fs::temp_directory_path(ec);
  if (ec) return Status::Error("no directory for temporary files: " + ec.message());
  o.log_path = (temp / fmt::format("lingualinked-{}-{}.log", run_name, getpid())).string();
  return o;
}

}  // namespace ll::emulate
