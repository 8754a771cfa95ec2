#include "emulate/local_cluster.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <sstream>
#include <thread>

namespace ll::emulate {
namespace {

using Clock = std::chrono::steady_clock;

// Process groups of all live workers, for the signal handler (no locks, no allocation).
constexpr size_t kMaxChildren = 256;
std::atomic<pid_t> g_children[kMaxChildren];

void register_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}

void unregister_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

// Reads the worker's first stdout line: "listening <endpoint> key <Z85 or 'none'>".
Result<std::string> read_line(int fd, Clock::time_point deadline) {
  std::string line;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::Error("did not start in time");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 0) return Status::Error("exited before it was ready");
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Errorf("read: {}", std::strerror(errno));
    }
    if (c == '\n') return line;
    line.push_back(c);
  }
}

// What a child of a device gets between fork and its work; -1: left as it is.
struct ChildSetup {
  int stdout_fd = -1;
  int stderr_fd = -1;
  int netns_fd = -1;      // the network namespace it joins, so its pid stays the worker's
  const char* hostname = nullptr;  // a UTS namespace of its own with this host name
  int inherited_fd = -1;  // kept open across exec
};

// Forks a child of a device: in its own process group (Ctrl-C on the terminal reaches the head
// only; the head stops its children), dying with this process, on the device's cores, set up as
// `setup` says, then running `work`, which does not return.
template <typename Work>
Result<pid_t> fork_child(const std::vector<int>& core_list, const ChildSetup& setup, Work work) {
  cpu_set_t cores;
  CPU_ZERO(&cores);
  for (int c : core_list) CPU_SET(c, &cores);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::Errorf("fork: {}", std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and the work; the head's own handlers are not the child's.
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    if (setup.stdout_fd >= 0) dup2(setup.stdout_fd, STDOUT_FILENO);
    if (setup.stderr_fd >= 0) dup2(setup.stderr_fd, STDERR_FILENO);
    if (setup.inherited_fd >= 0) fcntl(setup.inherited_fd, F_SETFD, 0);
    if (!core_list.empty() && sched_setaffinity(0, sizeof cores, &cores) != 0) {
      static const char kMessage[] = "lingualinked: cannot run on the device's cores\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(126);
    }
    if (setup.netns_fd >= 0 && setns(setup.netns_fd, CLONE_NEWNET) != 0) {
      static const char kMessage[] = "lingualinked: cannot enter the device's network namespace\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(126);
    }
    if (setup.hostname != nullptr &&
        (unshare(CLONE_NEWUTS) != 0 || sethostname(setup.hostname, std::strlen(setup.hostname)) != 0)) {
      static const char kMessage[] = "lingualinked: cannot give the device a host name of its own\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(126);
    }
    work();
    _exit(127);
  }
  setpgid(pid, pid);
  register_child(pid);
  return pid;
}

// Kills a child's process group and reaps it.
void kill_and_reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  unregister_child(pid);
}

// A pipe holding `keys` as a key file would, its read end returned for the child to inherit.
Result<int> key_pipe(const net::KeyPair& keys) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Status::Errorf("pipe: {}", std::strerror(errno));
  const std::string text = fmt::format("public {}\nsecret {}\n", keys.public_key, keys.secret_key);
  const bool written = ::write(fds[1], text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int error = errno;
  ::close(fds[1]);
  if (!written) {
    ::close(fds[0]);
    return Status::Errorf("cannot write the worker's key pair into its pipe: {}", std::strerror(error));
  }
  return fds[0];
}

}  // namespace

void LocalCluster::kill_all_from_signal_handler() {
  for (auto& slot : g_children) {
    const pid_t pid = slot.load();
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
    }
  }
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::start(LocalClusterOptions options) {
  if (options.devices.empty()) return Status::Error("a local cluster needs at least one device");
  const bool namespaced = std::any_of(options.devices.begin(), options.devices.end(),
                                      [](const DeviceSpec& d) { return d.link_bps > 0 || d.drops_link() || !d.host.empty(); });
  if (namespaced && options.insecure) {
    return Status::Error(
        "bandwidth limits (bw=), hosts (host=) and drop faults (fail=drop@...) put every worker in a network "
        "namespace, reached over a veth address that is not loopback, and plain-text (--insecure) links are allowed "
        "only on loopback: leave them out, or --insecure");
  }
  if (options.cli_paths.size() > options.devices.size()) {
    return Status::Errorf("{} programs for {} devices", options.cli_paths.size(), options.devices.size());
  }
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = std::move(options);
  c->head_keys_ = net::generate_keypair();
  c->children_.resize(c->options_.devices.size());
  if (namespaced) LL_RETURN_IF_ERROR(c->make_links());
  for (size_t i = 0; i < c->children_.size(); ++i) {
    Status st = c->spawn(i);
    if (!st.ok()) {
      c->stop();
      return Status::Errorf("worker '{}': {}", c->options_.devices[i].name, st.message());
    }
  }
  return c;
}

// All links before any worker starts, so that on any failure every worker runs on loopback
// instead; a drop fault cannot do without its namespace, so then nothing starts.
Status LocalCluster::make_links() {
  Status st = ShapedLink::available();
  for (size_t i = 0; i < children_.size() && st.ok(); ++i) {
    auto link = ShapedLink::create(options_.devices[i].link_bps);
    if (link.ok()) {
      children_[i].link = std::move(link).value();
    } else {
      st = link.status();
    }
  }
  for (size_t i = 0; i < children_.size(); ++i) {
    const DeviceSpec& d = options_.devices[i];
    if (!st.ok()) {
      if (d.drops_link()) {
        children_.clear();  // the links made so far
        return Status::Errorf("device {}: a drop fault cuts the device's link in a network namespace of its own, "
                              "and none can be made here: {}; run as root, or leave out fail=drop",
                              d.name, st.message());
      }
      if (!d.host.empty()) {
        children_.clear();
        return Status::Errorf("device {}: a host of its own (host={}) needs network and UTS namespaces, and none "
                              "can be made here: {}; run as root, or leave out host=",
                              d.name, d.host, st.message());
      }
      children_[i].link.reset();
      if (d.link_bps > 0) notes_.push_back(fmt::format("{}: runs unshaped: {}", d.name, st.message()));
    } else {
      notes_.push_back(fmt::format("{}: {}{}{}", d.name, d.host.empty() ? "" : "host " + d.host + ", ",
                                   children_[i].link->description(),
                                   d.link_bps == 0 && d.drops_link() ? ", in a namespace for its drop fault" : ""));
    }
  }
  return Status::Ok();
}

Status LocalCluster::spawn(size_t i) {
  Child& child = children_[i];
  // Made here, not by the worker, so that a restart can hand it the same pair.
  if (!options_.insecure) child.keys = net::generate_keypair();
  cap(i);
  LL_ASSIGN_OR_RETURN(const std::string endpoint,
                      launch(i, fmt::format("tcp://{}:0", child.link ? child.link->address() : "127.0.0.1"), false));
  addresses_.push_back({endpoint, child.keys.public_key});
  return Status::Ok();
}

// Worker i's cgroup, and the notes on its caps and cores.
void LocalCluster::cap(size_t i) {
  const DeviceSpec& d = options_.devices[i];
  Child& child = children_[i];
  // A share of at least one core per thread (and busy process) is what they get uncapped; a
  // quota would only add throttling of the worker's helper threads (measured: 63-94% of a core).
  const int threads = d.threads > 0 ? d.threads : options_.default_threads;
  const int busy = d.schedule.max_busy();
  child.quota_free_share = threads + busy;
  const double cpu = d.cpu >= child.quota_free_share ? 0.0 : d.cpu;
  if (d.cpu > 0 && cpu == 0) {
    notes_.push_back(fmt::format("{}: cpu {:.2f} covers its {} thread(s){}: no quota", d.name, d.cpu, threads,
                                 busy > 0 ? fmt::format(" and {} busy process(es)", busy) : ""));
  }
  if (cpu > 0 || d.memory > 0 || !d.schedule.empty()) {
    const bool cpu_group = cpu > 0 || !d.schedule.empty();
    auto g = Cgroup::create(d.name, cpu_group ? std::optional<double>(cpu) : std::nullopt, d.memory);
    if (g.ok()) {
      child.cgroup = std::move(g).value();
      notes_.push_back(fmt::format("{}: {}", d.name, child.cgroup->description()));
    } else {
      notes_.push_back(g.error());
    }
  }
  if (!d.cores.empty()) {
    notes_.push_back(fmt::format("{}: runs on core{} {}", d.name, d.cores.size() > 1 ? "s" : "",
                                 d.cores.size() > 1 ? fmt::format("{}-{}", d.cores.front(), d.cores.back())
                                                    : std::to_string(d.cores.front())));
  }
}

Result<std::string> LocalCluster::launch(size_t i, const std::string& listen, bool restarting) {
  const DeviceSpec& d = options_.devices[i];
  Child& child = children_[i];
  const bool own_program = i < options_.cli_paths.size() && !options_.cli_paths[i].empty();
  std::vector<std::string> args = {own_program ? options_.cli_paths[i] : options_.cli_path,
                                   "worker", "--listen", listen, "--name", d.name,
                                   "--threads", std::to_string(d.threads > 0 ? d.threads : options_.default_threads)};
  if (d.memory > 0) args.insert(args.end(), {"--mem", std::to_string(d.memory)});
  for (const std::string& dir : options_.model_dirs) args.insert(args.end(), {"--models", dir});
  if (options_.session_lease.count() > 0) {
    args.insert(args.end(), {"--session-lease", fmt::format("{}", options_.session_lease.count() / 1000.0)});
  }
  if (options_.no_mmap) args.push_back("--no-mmap");
  int key_fd = -1;
  const std::unique_ptr<int, void (*)(int*)> close_key(&key_fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);  // the child has its own copy
  });
  if (options_.insecure) {
    args.push_back("--insecure");
  } else {
    LL_ASSIGN_OR_RETURN(key_fd, key_pipe(child.keys));
    args.insert(args.end(), {"--key-fd", std::to_string(key_fd), "--allow", head_keys_.public_key});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  ChildSetup setup{.inherited_fd = key_fd};
  const std::unique_ptr<ChildSetup, void (*)(ChildSetup*)> close_fds(&setup, [](ChildSetup* fds) {
    for (int fd : {fds->stdout_fd, fds->stderr_fd, fds->netns_fd}) {
      if (fd >= 0) ::close(fd);  // when launch returns; the child has its own copies
    }
  });
  if (!d.host.empty()) setup.hostname = d.host.c_str();
  if (child.link) {
    setup.netns_fd = ::open(child.link->netns_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (setup.netns_fd < 0) return Status::Errorf("{}: {}", child.link->netns_path(), std::strerror(errno));
  }
  if (!options_.log_path.empty()) {
    setup.stderr_fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (setup.stderr_fd < 0) return Status::Errorf("{}: {}", options_.log_path, std::strerror(errno));
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Errorf("pipe: {}", std::strerror(errno));
  child.stdout_fd = out[0];
  setup.stdout_fd = out[1];
  LL_ASSIGN_OR_RETURN(child.pid, fork_child(d.cores, setup, [&] { execv(argv[0], argv.data()); }));
  if (child.cgroup) {
    Status st = child.cgroup->add(child.pid);
    if (!st.ok() && restarting) return Status::Errorf("its cgroup refused the restarted worker: {}", st.message());
    if (!st.ok()) notes_.push_back(fmt::format("{}: runs uncapped: {}", d.name, st.message()));
  }

  LL_ASSIGN_OR_RETURN(std::string line, read_line(child.stdout_fd, Clock::now() + options_.start_timeout));
  std::istringstream words(line);
  std::string listening, endpoint, key_word, key;
  words >> listening >> endpoint >> key_word >> key;
  if (listening != "listening" || key_word != "key") return Status::Errorf("unexpected first line '{}'", line);
  if (!options_.insecure && key != child.keys.public_key) {
    return Status::Errorf("reports key '{}', not the public key of the pair it was given", key);
  }
  return endpoint;
}

void LocalCluster::stop() {
  end_schedules();
  // Held to the end: a fault called from another thread now finds no worker to act on.
  std::vector<std::unique_lock<std::mutex>> locks;
  for (Child& c : children_) locks.emplace_back(*c.mutex);
  for (Child& c : children_) {
    if (c.pid <= 0) continue;  // never started, or killed and reaped
    ::kill(-c.pid, SIGTERM);
    ::kill(-c.pid, SIGCONT);  // a stopped worker must run to see SIGTERM
  }
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  for (Child& c : children_) {
    if (c.pid > 0) {
      int status;
      while (waitpid(c.pid, &status, WNOHANG) == 0) {
        if (Clock::now() >= deadline) {
          ::kill(-c.pid, SIGKILL);
          waitpid(c.pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      unregister_child(c.pid);
      c.pid = -1;
    }
    if (c.stdout_fd >= 0) ::close(c.stdout_fd);
    c.stdout_fd = -1;
    c.cgroup.reset();
    c.link.reset();  // also for a device whose worker never started
  }
}

LocalCluster::~LocalCluster() { stop(); }

pid_t LocalCluster::pid(size_t i) const {
  std::lock_guard lock(*children_[i].mutex);
  return children_[i].pid;
}

Status LocalCluster::kill(size_t i) {
  Child& child = children_[i];
  std::lock_guard lock(*child.mutex);
  if (child.pid <= 0) return Status::Errorf("worker {} is not running: there is nothing to kill", options_.devices[i].name);
  kill_and_reap(child.pid);
  child.pid = -1;
  ::close(child.stdout_fd);
  child.stdout_fd = -1;
  return Status::Ok();
}

Status LocalCluster::freeze(size_t i) {
  std::lock_guard lock(*children_[i].mutex);
  if (children_[i].pid <= 0) return Status::Errorf("worker {} is not running: there is nothing to freeze", options_.devices[i].name);
  if (::kill(-children_[i].pid, SIGSTOP) != 0) return Status::Errorf("SIGSTOP: {}", std::strerror(errno));
  return Status::Ok();
}

Status LocalCluster::thaw(size_t i) {
  std::lock_guard lock(*children_[i].mutex);
  if (children_[i].pid <= 0) return Status::Errorf("worker {} is not running: there is nothing to thaw", options_.devices[i].name);
  if (::kill(-children_[i].pid, SIGCONT) != 0) return Status::Errorf("SIGCONT: {}", std::strerror(errno));
  return Status::Ok();
}

Status LocalCluster::restart(size_t i, bool new_key) {
  const std::string& name = options_.devices[i].name;
  Child& child = children_[i];
  std::lock_guard lock(*child.mutex);
  if (child.pid > 0) return Status::Errorf("worker {} is still running: kill it before a restart", name);
  if (new_key && !options_.insecure) child.keys = net::generate_keypair();
  auto endpoint = launch(i, addresses_[i].endpoint, true);
  if (endpoint.ok() && *endpoint != addresses_[i].endpoint) {
    endpoint = Status::Errorf("listens at {}, not at its address {}", *endpoint, addresses_[i].endpoint);
  }
  if (!endpoint.ok()) {
    if (child.pid > 0) kill_and_reap(child.pid);
    child.pid = -1;
    if (child.stdout_fd >= 0) ::close(child.stdout_fd);
    child.stdout_fd = -1;
    return Status::Errorf("worker {} did not restart: {}", name, endpoint.error());
  }
  return Status::Ok();
}

Status LocalCluster::cut_link(size_t i) {
  std::lock_guard lock(*children_[i].mutex);
  if (!children_[i].link) {
    return Status::Errorf("worker {} runs on loopback, not in a network namespace, so its link cannot be cut: give "
                          "its device a drop fault (fail=drop@...) or a link rate (bw=)",
                          options_.devices[i].name);
  }
  return children_[i].link->set_up(false);
}

Status LocalCluster::restore_link(size_t i) {
  std::lock_guard lock(*children_[i].mutex);
  if (!children_[i].link) {
    return Status::Errorf("worker {} runs on loopback, not in a network namespace: it has no link to restore",
                          options_.devices[i].name);
  }
  return children_[i].link->set_up(true);
}

Status LocalCluster::start_schedules(std::function<void(const ScheduleChange&)> report) {
  if (schedule_thread_.joinable()) return Status::Error("the schedules of this cluster have already started");
  {
    std::lock_guard lock(schedule_mutex_);
    if (schedules_stopping_) return Status::Error("this cluster has stopped: start a new one");
  }
  schedule_thread_ = std::thread(&LocalCluster::run_schedules, this, Clock::now(), scheduled_steps(), std::move(report));
  return Status::Ok();
}

// Every device's steps in time order (a fault's undoing after it, for steps at the same time).
std::vector<LocalCluster::ScheduledStep> LocalCluster::scheduled_steps() const {
  using enum ScheduledStep::Action;
  std::vector<ScheduledStep> steps;
  for (size_t i = 0; i < options_.devices.size(); ++i) {
    const SpeedSchedule& schedule = options_.devices[i].schedule;
    // The first share is in effect from the start.
    for (size_t k = 1; k < schedule.cpu.size(); ++k) {
      steps.push_back({.seconds = schedule.cpu[k].seconds, .device = i, .action = Cpu, .value = schedule.cpu[k].value});
    }
    for (const TimedValue& step : schedule.busy) {
      steps.push_back({.seconds = step.seconds, .device = i, .action = Busy, .value = step.value});
    }
    for (const FaultStep& fault : options_.devices[i].faults) {
      const auto at = [&](double seconds, ScheduledStep::Action action) {
        steps.push_back({.seconds = seconds, .device = i, .action = action});
      };
      const double undone = fault.seconds + fault.duration;
      switch (fault.kind) {
        case FaultKind::Kill:
          at(fault.seconds, Kill);
          break;
        case FaultKind::Restart:
          at(fault.seconds, Restart);
          break;
        case FaultKind::Stop:
          at(fault.seconds, Freeze);
          if (fault.duration > 0) at(undone, Thaw);
          break;
        case FaultKind::Drop:
          at(fault.seconds, CutLink);
          if (fault.duration > 0) at(undone, RestoreLink);
          break;
      }
    }
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const ScheduledStep& a, const ScheduledStep& b) { return a.seconds < b.seconds; });
  return steps;
}

void LocalCluster::run_schedules(Clock::time_point start, std::vector<ScheduledStep> steps,
                                 const std::function<void(const ScheduleChange&)>& report) {
  std::unique_lock lock(schedule_mutex_);
  for (const ScheduledStep& step : steps) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(step.seconds));
    if (schedule_wake_.wait_until(lock, at, [this] { return schedules_stopping_; })) return;
    lock.unlock();
    const bool fault = step.action != ScheduledStep::Action::Cpu && step.action != ScheduledStep::Action::Busy;
    // Stamped as the step begins: peers see a kill before kill() returns (and a restart's worker
    // takes long to come up), and a recovery must never seem to precede the fault that caused it.
    const double began = std::chrono::duration<double>(Clock::now() - start).count();
    ScheduleChange change{
        .seconds = began, .device = step.device, .label = fault ? apply_fault(step) : apply(step), .fault = fault};
    if (report) report(change);
    lock.lock();
  }
  // A busy process is killed when the thread that forked it ends (PR_SET_PDEATHSIG), so this
  // thread lasts until stop().
  schedule_wake_.wait(lock, [this] { return schedules_stopping_; });
}

std::string LocalCluster::apply(const ScheduledStep& step) {
  const std::string& name = options_.devices[step.device].name;
  Child& child = children_[step.device];
  Status st = Status::Ok();
  std::string label;
  if (step.action == ScheduledStep::Action::Busy) {
    const int count = static_cast<int>(step.value);
    label = fmt::format("{}: {} busy process{}", name, count, count == 1 ? "" : "es");
    st = set_busy(step.device, count);
  } else {
    label = fmt::format("{}: cpu {:g}", name, step.value);
    if (!child.cgroup) {
      st = Status::Error("the device runs uncapped");
    } else {
      st = child.cgroup->set_cpu(step.value >= child.quota_free_share ? 0.0 : step.value);
    }
  }
  return st.ok() ? label : fmt::format("{} not applied: {}", label, st.message());
}

std::string LocalCluster::apply_fault(const ScheduledStep& step) {
  using enum ScheduledStep::Action;
  const size_t i = step.device;
  const auto [what, st] = [&]() -> std::pair<const char*, Status> {
    switch (step.action) {
      case Kill:
        return {"killed", kill(i)};
      case Freeze:
        return {"frozen", freeze(i)};
      case Thaw:
        return {"thawed", thaw(i)};
      case Restart:
        return {"restarted", restart(i)};
      case CutLink:
        return {"link cut", cut_link(i)};
      case RestoreLink:
        return {"link restored", restore_link(i)};
      case Cpu:
      case Busy:
        break;
    }
    return {"not a fault", Status::Error("a speed step")};
  }();
  const std::string label = fmt::format("{}: {}", options_.devices[i].name, what);
  return st.ok() ? label : fmt::format("{} not applied: {}", label, st.message());
}

Status LocalCluster::set_busy(size_t i, int count) {
  std::vector<pid_t>& busy = children_[i].busy;
  while (static_cast<int>(busy.size()) > count) {
    const pid_t pid = busy.back();
    busy.pop_back();
    kill_and_reap(pid);
  }
  while (static_cast<int>(busy.size()) < count) {
    LL_ASSIGN_OR_RETURN(const pid_t pid, spawn_busy(i));
    busy.push_back(pid);
  }
  return Status::Ok();
}

Result<pid_t> LocalCluster::spawn_busy(size_t i) {
  Child& child = children_[i];
  LL_ASSIGN_OR_RETURN(const pid_t pid, fork_child(options_.devices[i].cores, {}, [] {
                        volatile uint64_t spin = 0;
                        while (true) spin = spin + 1;
                      }));
  if (child.cgroup) {
    Status st = child.cgroup->add(pid);
    if (!st.ok()) {
      kill_and_reap(pid);
      return st;
    }
  }
  return pid;
}

void LocalCluster::end_schedules() {
  {
    std::lock_guard lock(schedule_mutex_);
    schedules_stopping_ = true;
  }
  schedule_wake_.notify_all();
  if (schedule_thread_.joinable()) schedule_thread_.join();
  for (size_t i = 0; i < children_.size(); ++i) (void)set_busy(i, 0);
}

}  // namespace ll::emulate
