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
  const bool shaped =
      std::any_of(options.devices.begin(), options.devices.end(), [](const DeviceSpec& d) { return d.link_bps > 0; });
  if (shaped && options.insecure) {
    return Status::Error(
        "bandwidth limits (bw=) put every worker in a network namespace, reached over a veth address that is not "
        "loopback, and plain-text (--insecure) links are allowed only on loopback: drop bw= or --insecure");
  }
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = std::move(options);
  c->head_keys_ = net::generate_keypair();
  c->children_.resize(c->options_.devices.size());
  if (shaped) c->make_links();
  for (size_t i = 0; i < c->children_.size(); ++i) {
    Status st = c->spawn(i);
    if (!st.ok()) {
      c->stop();
      return Status::Errorf("worker '{}': {}", c->options_.devices[i].name, st.message());
    }
  }
  return c;
}

// All links before any worker starts, so that on any failure every worker runs on loopback instead.
void LocalCluster::make_links() {
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
      children_[i].link.reset();
      if (d.link_bps > 0) notes_.push_back(fmt::format("{}: runs unshaped: {}", d.name, st.message()));
    } else {
      notes_.push_back(fmt::format("{}: {}", d.name, children_[i].link->description()));
    }
  }
}

Status LocalCluster::spawn(size_t i) {
  const DeviceSpec& d = options_.devices[i];
  Child& child = children_[i];
  const std::string listen = fmt::format("tcp://{}:0", child.link ? child.link->address() : "127.0.0.1");
  std::vector<std::string> args = {options_.cli_path, "worker", "--listen", listen, "--name", d.name,
                                   "--threads", std::to_string(d.threads > 0 ? d.threads : options_.default_threads)};
  if (d.memory > 0) args.insert(args.end(), {"--mem", std::to_string(d.memory)});
  for (const std::string& dir : options_.model_dirs) args.insert(args.end(), {"--models", dir});
  if (options_.session_lease.count() > 0) {
    args.insert(args.end(), {"--session-lease", fmt::format("{}", options_.session_lease.count() / 1000.0)});
  }
  if (options_.insecure) {
    args.push_back("--insecure");
  } else {
    // No --key: the worker makes its own key pair and reports the public key, so no secret key
    // is ever on disk, not even when this process is killed before it could clean up.
    args.insert(args.end(), {"--allow", head_keys_.public_key});
  }
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

  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int netns_fd = -1;  // the child joins it before exec, so its pid stays the worker's
  if (child.link) {
    netns_fd = ::open(child.link->netns_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) return Status::Errorf("{}: {}", child.link->netns_path(), std::strerror(errno));
  }
  const std::unique_ptr<int, void (*)(int*)> close_netns(&netns_fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);  // when spawn returns; the child has its own copy
  });
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Errorf("pipe: {}", std::strerror(errno));
  int log_fd = -1;
  if (!options_.log_path.empty()) {
    log_fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return Status::Errorf("{}: {}", options_.log_path, std::strerror(errno));
  }
  cpu_set_t cores;
  CPU_ZERO(&cores);
  for (int c : d.cores) CPU_SET(c, &cores);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::Errorf("fork: {}", std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    setpgid(0, 0);  // Ctrl-C on the terminal reaches the head only; the head stops the workers
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    dup2(out[1], STDOUT_FILENO);
    if (log_fd >= 0) dup2(log_fd, STDERR_FILENO);
    if (!d.cores.empty() && sched_setaffinity(0, sizeof cores, &cores) != 0) {
      static const char kMessage[] = "worker: cannot run on its cores\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(126);
    }
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      static const char kMessage[] = "worker: cannot enter its network namespace\n";
      (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      _exit(126);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  child.pid = pid;
  register_child(pid);
  ::close(out[1]);
  if (log_fd >= 0) ::close(log_fd);
  child.stdout_fd = out[0];
  if (child.cgroup) {
    Status st = child.cgroup->add(pid);
    if (!st.ok()) notes_.push_back(fmt::format("{}: runs uncapped: {}", d.name, st.message()));
  }

  LL_ASSIGN_OR_RETURN(std::string line, read_line(child.stdout_fd, Clock::now() + options_.start_timeout));
  std::istringstream words(line);
  std::string listening, endpoint, key_word, key;
  words >> listening >> endpoint >> key_word >> key;
  if (listening != "listening" || key_word != "key") return Status::Errorf("unexpected first line '{}'", line);
  if (!options_.insecure && !net::is_valid_z85_key(key)) return Status::Errorf("reports key '{}', not a Z85 public key", key);
  addresses_.push_back({endpoint, options_.insecure ? std::string() : key});
  return Status::Ok();
}

void LocalCluster::stop() {
  end_schedules();
  for (Child& c : children_) {
    if (c.pid <= 0) continue;
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

Status LocalCluster::start_schedules(std::function<void(const ScheduleChange&)> report) {
  if (schedule_thread_.joinable()) return Status::Error("the schedules of this cluster have already started");
  {
    std::lock_guard lock(schedule_mutex_);
    if (schedules_stopping_) return Status::Error("this cluster has stopped: start a new one");
  }
  std::vector<ScheduledStep> steps;
  for (size_t i = 0; i < options_.devices.size(); ++i) {
    const SpeedSchedule& schedule = options_.devices[i].schedule;
    // The first share is in effect from the start.
    for (size_t k = 1; k < schedule.cpu.size(); ++k) {
      steps.push_back({.seconds = schedule.cpu[k].seconds, .device = i, .busy = false, .value = schedule.cpu[k].value});
    }
    for (const TimedValue& step : schedule.busy) {
      steps.push_back({.seconds = step.seconds, .device = i, .busy = true, .value = step.value});
    }
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const ScheduledStep& a, const ScheduledStep& b) { return a.seconds < b.seconds; });
  schedule_thread_ = std::thread(&LocalCluster::run_schedules, this, Clock::now(), std::move(steps), std::move(report));
  return Status::Ok();
}

void LocalCluster::run_schedules(Clock::time_point start, std::vector<ScheduledStep> steps,
                                 const std::function<void(const ScheduleChange&)>& report) {
  std::unique_lock lock(schedule_mutex_);
  for (const ScheduledStep& step : steps) {
    const auto at = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(step.seconds));
    if (schedule_wake_.wait_until(lock, at, [this] { return schedules_stopping_; })) return;
    lock.unlock();
    ScheduleChange change{.device = step.device, .label = apply(step)};
    change.seconds = std::chrono::duration<double>(Clock::now() - start).count();
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
  if (step.busy) {
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

Status LocalCluster::set_busy(size_t i, int count) {
  std::vector<pid_t>& busy = children_[i].busy;
  while (static_cast<int>(busy.size()) > count) {
    const pid_t pid = busy.back();
    busy.pop_back();
    ::kill(-pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    unregister_child(pid);
  }
  while (static_cast<int>(busy.size()) < count) {
    LL_ASSIGN_OR_RETURN(const pid_t pid, spawn_busy(i));
    busy.push_back(pid);
  }
  return Status::Ok();
}

Result<pid_t> LocalCluster::spawn_busy(size_t i) {
  const DeviceSpec& d = options_.devices[i];
  Child& child = children_[i];
  cpu_set_t cores;
  CPU_ZERO(&cores);
  for (int c : d.cores) CPU_SET(c, &cores);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::Errorf("fork: {}", std::strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and the loop; the head's own handlers are not its own.
    setpgid(0, 0);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    if (!d.cores.empty() && sched_setaffinity(0, sizeof cores, &cores) != 0) _exit(126);
    volatile uint64_t spin = 0;
    while (true) spin = spin + 1;
  }
  setpgid(pid, pid);
  register_child(pid);
  if (child.cgroup) {
    Status st = child.cgroup->add(pid);
    if (!st.ok()) {
      ::kill(-pid, SIGKILL);
      int status;
      waitpid(pid, &status, 0);
      unregister_child(pid);
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
