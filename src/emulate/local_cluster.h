#pragma once
// A cluster on this machine: `lingualinked worker` child processes on loopback, each with a
// fresh key pair it makes itself and reports (so no secret key is ever on disk), allowing only
// this head's fresh key, and optionally its own cgroup caps.
// When any device has a link rate (bw=), every worker runs in a network namespace of its own
// (ShapedLink, netns.h) and listens on its namespace's address instead: a worker in a namespace
// cannot reach the host's loopback, and workers send to each other, so all of them must be on
// addresses every namespace reaches. Devices without a rate get an unshaped link. Shaping needs
// root; without it the workers run unshaped on loopback, with a note saying why.
// Every child runs in its own process group and dies with its parent; stop() (also run by the
// destructor) terminates, kills and reaps them all and removes their cgroups and namespaces.
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "emulate/cgroup.h"
#include "emulate/device_spec.h"
#include "cluster/head.h"
#include "emulate/netns.h"
#include "core/status.h"
#include "net/keys.h"

namespace ll::emulate {

struct LocalClusterOptions {
  std::string cli_path;              // the lingualinked executable
  std::vector<DeviceSpec> devices;   // one worker each
  int default_threads = 1;           // for devices that do not say
  bool insecure = false;             // plain-text loopback links (tests of the raw protocol); not with bw
  std::string log_path;              // the workers' stderr is appended here; empty: inherited
  std::vector<std::string> model_dirs;  // where the head may name model files (worker --models); empty: the worker's default
  std::chrono::milliseconds start_timeout{20000};
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> start(LocalClusterOptions options);
  ~LocalCluster();
  void stop();

  const net::KeyPair& head_keys() const { return head_keys_; }
  const std::vector<cluster::WorkerAddress>& addresses() const { return addresses_; }
  pid_t pid(size_t i) const { return children_[i].pid; }
  // Worker i's network namespace and link, or null when it runs on loopback.
  const ShapedLink* link(size_t i) const { return children_[i].link.get(); }
  // One line per device on its caps and link (or why it runs uncapped or unshaped).
  const std::vector<std::string>& notes() const { return notes_; }

  // Kills the workers of every LocalCluster in this process. Async-signal-safe: for SIGINT and
  // SIGTERM handlers, after which the owner still calls stop() to reap them.
  static void kill_all_from_signal_handler();

 private:
  struct Child {
    pid_t pid = -1;
    int stdout_fd = -1;
    std::unique_ptr<Cgroup> cgroup;
    std::unique_ptr<ShapedLink> link;  // removed only after the worker is reaped
  };
  LocalCluster() = default;
  void make_links();
  Status spawn(size_t i);

  LocalClusterOptions options_;
  net::KeyPair head_keys_;
  std::vector<Child> children_;
  std::vector<cluster::WorkerAddress> addresses_;
  std::vector<std::string> notes_;
};

}  // namespace ll::emulate
