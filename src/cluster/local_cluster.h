#pragma once
// A cluster on this machine: `lingualinked worker` child processes on loopback, each with a
// fresh key pair (allowing only this head's fresh key) and optionally its own cgroup caps.
// Every child runs in its own process group and dies with its parent; stop() (also run by the
// destructor) terminates, kills and reaps them all and removes their cgroups and key files.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/cgroup.h"
#include "cluster/device_spec.h"
#include "cluster/head.h"
#include "core/status.h"
#include "net/keys.h"

namespace ll::cluster {

struct LocalClusterOptions {
  std::string cli_path;              // the lingualinked executable
  std::vector<DeviceSpec> devices;   // one worker each
  int default_threads = 1;           // for devices that do not say
  bool insecure = false;             // plain-text loopback links (tests of the raw protocol)
  std::string log_path;              // the workers' stderr is appended here; empty: inherited
  std::chrono::milliseconds start_timeout{20000};
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> start(LocalClusterOptions options);
  ~LocalCluster();
  void stop();

  const net::KeyPair& head_keys() const { return head_keys_; }
  const std::vector<WorkerAddress>& addresses() const { return addresses_; }
  pid_t pid(size_t i) const { return children_[i].pid; }
  // One line per device on its caps (or why it runs uncapped).
  const std::vector<std::string>& notes() const { return notes_; }

  // Kills the workers of every LocalCluster in this process. Async-signal-safe: for SIGINT and
  // SIGTERM handlers, after which the owner still calls stop() to reap them.
  static void kill_all_from_signal_handler();

 private:
  struct Child {
    pid_t pid = -1;
    int stdout_fd = -1;
    std::unique_ptr<Cgroup> cgroup;
  };
  LocalCluster() = default;
  Status spawn(size_t i);

  LocalClusterOptions options_;
  net::KeyPair head_keys_;
  std::string key_dir_;
  std::vector<Child> children_;
  std::vector<WorkerAddress> addresses_;
  std::vector<std::string> notes_;
};

}  // namespace ll::cluster
