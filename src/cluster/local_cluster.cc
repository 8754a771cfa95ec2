#include "cluster/local_cluster.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

namespace ll::cluster {
namespace fs = std::filesystem;
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
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->options_ = std::move(options);
  c->head_keys_ = net::generate_keypair();
  std::error_code ec;
  c->key_dir_ = (fs::temp_directory_path() / fmt::format("lingualinked-keys-{}-{}", getpid(),
                                                         reinterpret_cast<uintptr_t>(c.get())))
                    .string();
  fs::create_directories(c->key_dir_, ec);
  if (ec) return Status::Errorf("{}: {}", c->key_dir_, ec.message());
  fs::permissions(c->key_dir_, fs::perms::owner_all, ec);
  c->children_.resize(c->options_.devices.size());
  for (size_t i = 0; i < c->children_.size(); ++i) {
    Status st = c->spawn(i);
    if (!st.ok()) {
      c->stop();
      return Status::Errorf("worker '{}': {}", c->options_.devices[i].name, st.message());
    }
  }
  return c;
}

Status LocalCluster::spawn(size_t i) {
  const DeviceSpec& d = options_.devices[i];
  Child& child = children_[i];
  net::KeyPair keys = net::generate_keypair();
  const std::string key_path = (fs::path(key_dir_) / (d.name + ".key")).string();
  std::vector<std::string> args = {options_.cli_path, "worker", "--listen", "tcp://127.0.0.1:0", "--name", d.name,
                                   "--threads", std::to_string(d.threads > 0 ? d.threads : options_.default_threads)};
  if (d.memory > 0) args.insert(args.end(), {"--mem", std::to_string(d.memory)});
  if (options_.insecure) {
    args.push_back("--insecure");
  } else {
    LL_RETURN_IF_ERROR(net::save_keypair(key_path, keys));
    args.insert(args.end(), {"--key", key_path, "--allow", head_keys_.public_key});
  }
  if (d.cpu > 0 || d.memory > 0) {
    auto g = Cgroup::create(d.name, d.cpu, d.memory);
    if (g.ok()) {
      child.cgroup = std::move(g).value();
      notes_.push_back(fmt::format("{}: {}", d.name, child.cgroup->description()));
    } else {
      notes_.push_back(g.error());
    }
  }

  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Errorf("pipe: {}", std::strerror(errno));
  int log_fd = -1;
  if (!options_.log_path.empty()) {
    log_fd = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return Status::Errorf("{}: {}", options_.log_path, std::strerror(errno));
  }
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
  if (!options_.insecure && key != keys.public_key) return Status::Errorf("reports key {}, not {}", key, keys.public_key);
  addresses_.push_back({endpoint, options_.insecure ? std::string() : keys.public_key});
  return Status::Ok();
}

void LocalCluster::stop() {
  for (Child& c : children_) {
    if (c.pid <= 0) continue;
    ::kill(-c.pid, SIGTERM);
    ::kill(-c.pid, SIGCONT);  // a stopped worker must run to see SIGTERM
  }
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  for (Child& c : children_) {
    if (c.pid <= 0) continue;
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
    if (c.stdout_fd >= 0) ::close(c.stdout_fd);
    c.stdout_fd = -1;
    c.cgroup.reset();
  }
  if (!key_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(key_dir_, ec);
  }
}

LocalCluster::~LocalCluster() { stop(); }

}  // namespace ll::cluster
