#pragma once
// A cluster on this machine: `lingualinked worker` child processes on loopback, each with a
// fresh key pair made here and handed to it over an inherited pipe (`worker --key-fd`, so no
// secret key is ever on disk, and a restarted worker has the key its heads pinned), allowing
// only this head's fresh key, and optionally its own cgroup caps.
// When any device has a link rate (bw=) or a drop fault (fail=drop@...), every worker runs in a
// network namespace of its own (ShapedLink, netns.h) and listens on its namespace's address
// instead: a worker in a namespace cannot reach the host's loopback, and workers send to each
// other, so all of them must be on addresses every namespace reaches. Devices without a rate get
// an unshaped link. Namespaces need root; without it the workers run unshaped on loopback, with
// a note saying why, unless a device has a drop fault: that cannot be emulated, so start() fails.
// Devices' speed schedules (SpeedSchedule) run from start_schedules(): the cgroup's CPU quota
// changes, and busy-looping children of this process join the device's cgroup, so they take
// from its share.
// Devices' fail= schedules run from start_schedules() too, through the fault methods.
// Every child runs in its own process group and dies with its parent; stop() (also run by the
// destructor) ends the schedules, terminates, kills and reaps all children and removes their
// cgroups and namespaces.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
  // Per device, where devices run different builds of it (an aarch64 one under an emulator);
  // empty, or an empty entry: cli_path.
  std::vector<std::string> cli_paths;
  std::vector<DeviceSpec> devices;   // one worker each
  int default_threads = 1;           // for devices that do not say
  bool insecure = false;             // plain-text loopback links (tests of the raw protocol); not with bw
  std::string log_path;              // the workers' stderr is appended here; empty: inherited
  std::vector<std::string> model_dirs;  // where the head may name model files (worker --models); empty: the worker's default
  std::chrono::milliseconds session_lease{0};  // worker --session-lease; 0: the worker's default
  bool no_mmap = false;              // worker --no-mmap
  std::chrono::milliseconds start_timeout{20000};
};

// One change of an emulated device's speed, as start_schedules applied it.
struct ScheduleChange {
  double seconds = 0;  // since start_schedules, when the step began
  size_t device = 0;
  std::string label;   // "b: cpu 0.15", "b: 1 busy process", "b: killed", "b: link cut", "... not applied: why"
  bool fault = false;  // a fail= step (or its undoing: thawed, link restored)
};

class LocalCluster {
 public:
  static Result<std::unique_ptr<LocalCluster>> start(LocalClusterOptions options);
  ~LocalCluster();
  void stop();

  // Applies the devices' schedules on a thread of its own, their times counted from this call,
  // and reports each change through `report` (on that thread) once it is in effect. The share a
  // schedule starts with is in effect from start() and not reported. Once per cluster.
  Status start_schedules(std::function<void(const ScheduleChange&)> report);

  const net::KeyPair& head_keys() const { return head_keys_; }
  // As start() found them; a restart keeps them (a restart with new_key gives a key they do not name).
  const std::vector<cluster::WorkerAddress>& addresses() const { return addresses_; }
  // Worker i's process; -1 while it is killed.
  pid_t pid(size_t i) const;
  // Worker i's network namespace and link, or null when it runs on loopback.
  const ShapedLink* link(size_t i) const { return children_[i].link.get(); }
  // One line per device on its caps and link (or why it runs uncapped or unshaped).
  const std::vector<std::string>& notes() const { return notes_; }

  // Faults on demand (the devices' fail= schedules run them from start_schedules; tests call them
  // directly). Each acts on worker i's process (or its link) at once and is safe to call from any
  // thread. kill: SIGKILL, reaped. freeze/thaw: SIGSTOP/SIGCONT. restart: a killed worker starts
  // again at its address with its key (or, with new_key, a fresh key the head does not trust).
  // cut_link/restore_link: its namespace's link down/up (only for a worker in a namespace).
  // A restarted worker dies with the thread that restarted it (PR_SET_PDEATHSIG is per thread):
  // restart from a thread that lasts as long as the worker should (the schedules' or the owner's).
  Status kill(size_t i);
  Status freeze(size_t i);
  Status thaw(size_t i);
  Status restart(size_t i, bool new_key = false);
  Status cut_link(size_t i);
  Status restore_link(size_t i);

  // Kills the workers of every LocalCluster in this process. Async-signal-safe: for SIGINT and
  // SIGTERM handlers, after which the owner still calls stop() to reap them.
  static void kill_all_from_signal_handler();

 private:
  struct Child {
    std::unique_ptr<std::mutex> mutex = std::make_unique<std::mutex>();  // pid, stdout_fd, keys: faults come from any thread
    pid_t pid = -1;
    int stdout_fd = -1;
    net::KeyPair keys;  // its key pair (empty when insecure), kept for restarts
    std::unique_ptr<Cgroup> cgroup;
    std::unique_ptr<ShapedLink> link;  // removed only after the worker is reaped
    double quota_free_share = 0;  // a share this large sets no quota
    std::vector<pid_t> busy;      // this device's busy processes, children of the schedule thread
  };
  struct ScheduledStep {
    enum class Action : uint8_t { Cpu, Busy, Kill, Freeze, Thaw, Restart, CutLink, RestoreLink };
    double seconds = 0;
    size_t device = 0;
    Action action = Action::Cpu;
    double value = 0;  // cpu: a share; busy: a number of processes
  };
  LocalCluster() = default;
  Status make_links();
  Status spawn(size_t i);
  void cap(size_t i);
  // Starts worker i's process listening at `listen`, with child.keys; returns the endpoint it reports.
  Result<std::string> launch(size_t i, const std::string& listen, bool restarting);
  std::vector<ScheduledStep> scheduled_steps() const;
  std::string apply_fault(const ScheduledStep& step);
  void run_schedules(std::chrono::steady_clock::time_point start, std::vector<ScheduledStep> steps,
                     const std::function<void(const ScheduleChange&)>& report);
  std::string apply(const ScheduledStep& step);
  Status set_busy(size_t i, int count);
  Result<pid_t> spawn_busy(size_t i);
  void end_schedules();

  LocalClusterOptions options_;
  net::KeyPair head_keys_;
  std::vector<Child> children_;
  std::vector<cluster::WorkerAddress> addresses_;
  std::vector<std::string> notes_;
  std::thread schedule_thread_;
  std::mutex schedule_mutex_;
  std::condition_variable schedule_wake_;
  bool schedules_stopping_ = false;  // guarded by schedule_mutex_
};

}  // namespace ll::emulate
