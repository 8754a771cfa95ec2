#include "emulate/netns.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

extern char** environ;

namespace ll::emulate {
namespace fs = std::filesystem;
namespace {

// Subnets 10.77.0.0/24 .. 10.86.255.0/24, one per link.
constexpr int kFirstOctet = 77;
constexpr int kSlots = 10 * 256;
// Serializes choosing a subnet and creating the link among all processes of this machine, so
// two clusters (in this process or another) never pick the same subnet.
constexpr const char* kLockPath = "/run/lingualinked-netns.lock";
constexpr const char* kNetnsDir = "/run/netns";
// Inside its namespace the veth end can have a fixed name.
constexpr const char* kInnerIf = "veth0";

std::atomic<uint32_t> g_next_link{0};

std::string netns_name(unsigned long pid, unsigned long n) { return fmt::format("ll-{}-{}", pid, n); }
// The host end of link n: an interface name has at most 15 characters.
std::string host_interface(unsigned long pid, unsigned long n) { return fmt::format("ll{}-{}", pid, n % 100000); }

// `name` in $PATH, then in the sbin directories a non-login root shell may lack.
std::string find_tool(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string list = path;
    for (size_t begin = 0, end; begin <= list.size(); begin = end + 1) {
      end = std::min(list.find(':', begin), list.size());
      dirs.push_back(list.substr(begin, end - begin));
    }
  }
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.emplace_back(d);
  for (const std::string& d : dirs) {
    if (d.empty()) continue;
    const std::string candidate = d + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `tool args...` (no shell), waits for it, and returns its stderr in the error on failure.
Status run(const std::string& tool, const std::vector<std::string>& args) {
  const std::string path = find_tool(tool);
  if (path.empty()) return Status::Errorf("no `{}` command (install iproute2)", tool);
  std::string shown = tool;
  std::vector<char*> argv{const_cast<char*>(path.c_str())};
  for (const std::string& a : args) {
    argv.push_back(const_cast<char*>(a.c_str()));
    shown += " " + a;
  }
  argv.push_back(nullptr);
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return Status::Errorf("pipe: {}", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err[1]);
  if (rc != 0) {
    ::close(err[0]);
    return Status::Errorf("`{}`: {}", shown, std::strerror(rc));
  }
  std::string output;
  char buf[512];
  while (true) {
    const ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n > 0) {
      if (output.size() < 4096) output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  while (!output.empty() && std::isspace(static_cast<unsigned char>(output.back()))) output.pop_back();
  std::replace(output.begin(), output.end(), '\n', ' ');
  return Status::Errorf("`{}` failed: {}", shown,
                        !output.empty()      ? output
                        : WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                            : "killed by a signal");
}

class FileLock {
 public:
  static Result<FileLock> acquire(const char* path) {
    FileLock l;
    l.fd_ = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l.fd_ < 0) return Status::Errorf("{}: {}", path, std::strerror(errno));
    while (::flock(l.fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return Status::Errorf("lock {}: {}", path, std::strerror(errno));
    }
    return l;
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }

 private:
  FileLock() = default;
  int fd_ = -1;
};

// Subnets already holding an address of this namespace (ours from other links, or the host's own).
std::set<int> used_slots() {
  std::set<int> used;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return used;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    const uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr.s_addr);
    const int o1 = static_cast<int>(ip >> 24), o2 = static_cast<int>((ip >> 16) & 255), o3 = static_cast<int>((ip >> 8) & 255);
    if (o1 == 10 && o2 >= kFirstOctet && o2 < kFirstOctet + kSlots / 256) used.insert((o2 - kFirstOctet) * 256 + o3);
  }
  freeifaddrs(list);
  return used;
}

// Namespaces `ll-<pid>-<n>` left behind by a process that was killed before it could remove
// them (SIGKILL): its workers died with it (PR_SET_PDEATHSIG), so nothing uses them.
void remove_stale_namespaces() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kNetnsDir, ec)) {
    const std::string name = entry.path().filename().string();
    unsigned long pid = 0, n = 0;
    char tail = 0;
    if (std::sscanf(name.c_str(), "ll-%lu-%lu%c", &pid, &n, &tail) != 2) continue;
    if (name != netns_name(pid, n) || pid == 0 || pid > 0x7fffffff) continue;
    if (static_cast<pid_t>(pid) == getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    // The veth pair first: it would otherwise hold its subnet until the kernel frees the namespace.
    (void)run("ip", {"link", "del", host_interface(pid, n)});
    (void)run("ip", {"netns", "del", name});
  }
}

}  // namespace

std::string format_bit_rate(uint64_t bps) {
  const double v = static_cast<double>(bps);
  if (v >= 1e9) return fmt::format("{:.4g} Gbit/s", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.4g} Mbit/s", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.4g} kbit/s", v / 1e3);
  return fmt::format("{} bit/s", bps);
}

Status ShapedLink::available() {
  if (geteuid() != 0) return Status::Error("bandwidth limits need root (network namespaces, veth and tc)");
  for (const char* tool : {"ip", "tc"}) {
    if (find_tool(tool).empty()) return Status::Errorf("bandwidth limits need the `{}` command (install iproute2)", tool);
  }
  return Status::Ok();
}

Result<std::unique_ptr<ShapedLink>> ShapedLink::create(uint64_t rate_bps) {
  LL_RETURN_IF_ERROR(available());
  std::unique_ptr<ShapedLink> link(new ShapedLink());
  link->rate_bps_ = rate_bps;
  const uint32_t n = g_next_link.fetch_add(1);
  link->netns_ = netns_name(getpid(), n);
  link->netns_path_ = fmt::format("{}/{}", kNetnsDir, link->netns_);
  link->host_if_ = host_interface(getpid(), n);
  LL_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(kLockPath));
  remove_stale_namespaces();
  const std::set<int> used = used_slots();
  int slot = 0;
  while (slot < kSlots && used.count(slot) > 0) ++slot;
  if (slot == kSlots) return Status::Errorf("all {} link subnets 10.{}-{}.x.0/24 are in use", kSlots, kFirstOctet, kFirstOctet + kSlots / 256 - 1);
  // On failure the destructor removes whatever was made.
  LL_RETURN_IF_ERROR(link->setup(slot));
  return link;
}

Status ShapedLink::setup(int slot) {
  const std::string net = fmt::format("10.{}.{}", kFirstOctet + slot / 256, slot % 256);
  host_address_ = net + ".1";
  address_ = net + ".2";
  LL_RETURN_IF_ERROR(run("ip", {"netns", "add", netns_}));
  netns_created_ = true;
  LL_RETURN_IF_ERROR(run("ip", {"link", "add", host_if_, "type", "veth", "peer", "name", kInnerIf, "netns", netns_}));
  veth_created_ = true;
  LL_RETURN_IF_ERROR(run("ip", {"addr", "add", host_address_ + "/24", "dev", host_if_}));
  LL_RETURN_IF_ERROR(run("ip", {"link", "set", host_if_, "up"}));
  // Forwarding on this interface only: packets from the namespace may go on to other
  // namespaces, while the host as a whole (net.ipv4.ip_forward) stays as it was.
  {
    const std::string path = fmt::format("/proc/sys/net/ipv4/conf/{}/forwarding", host_if_);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && ::write(fd, "1", 1) == 1;
    const int error = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) return Status::Errorf("cannot enable forwarding in {}: {}", path, std::strerror(error));
  }
  LL_RETURN_IF_ERROR(run("ip", {"-n", netns_, "addr", "add", address_ + "/24", "dev", kInnerIf}));
  LL_RETURN_IF_ERROR(run("ip", {"-n", netns_, "link", "set", kInnerIf, "up"}));
  LL_RETURN_IF_ERROR(run("ip", {"-n", netns_, "link", "set", "lo", "up"}));
  LL_RETURN_IF_ERROR(run("ip", {"-n", netns_, "route", "add", "default", "via", host_address_}));
  if (rate_bps_ > 0) {
    // burst: at least the bytes the rate allows in one 4 ms timer tick (HZ=250), or tbf cannot
    // reach high rates; at least 16 KiB so that full-size packets (and segmented GSO bursts)
    // pass. latency 50 ms: the queue holds 50 ms of traffic, like a router's buffer; longer only
    // adds delay, shorter drops packets and TCP falls below the rate.
    const uint64_t burst = std::max<uint64_t>(rate_bps_ / 8 / 250, 16 * 1024);
    const std::vector<std::string> tbf = {"root", "tbf", "rate", fmt::format("{}bit", rate_bps_), "burst",
                                          std::to_string(burst), "latency", "50ms"};
    std::vector<std::string> host = {"qdisc", "add", "dev", host_if_};
    host.insert(host.end(), tbf.begin(), tbf.end());
    LL_RETURN_IF_ERROR(run("tc", host));  // to the device
    std::vector<std::string> inner = {"-n", netns_, "qdisc", "add", "dev", kInnerIf};
    inner.insert(inner.end(), tbf.begin(), tbf.end());
    LL_RETURN_IF_ERROR(run("tc", inner));  // from the device
  }
  return Status::Ok();
}

std::string ShapedLink::description() const {
  const std::string where = fmt::format("netns {}, {}", netns_, address_);
  if (rate_bps_ == 0) return fmt::format("link not shaped ({})", where);
  return fmt::format("link shaped to {} ({})", format_bit_rate(rate_bps_), where);
}

Status ShapedLink::set_up(bool up) { return run("ip", {"link", "set", host_if_, up ? "up" : "down"}); }

ShapedLink::~ShapedLink() {
  // Deleting one end deletes both at once; the namespace alone would take its veth end with it
  // only when the kernel gets round to freeing the namespace.
  if (veth_created_) (void)run("ip", {"link", "del", host_if_});
  if (netns_created_) (void)run("ip", {"netns", "del", netns_});
}

}  // namespace ll::emulate
