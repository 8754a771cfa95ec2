#include "emulate/cgroup.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/proc_cgroup.h"

namespace ll::emulate {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";
// The quota's period: short, so a capped worker is slower at every step. With 20 ms a stage
// that computes for less than a period after waiting for its turn ran at 0.7 of a core under
// a half-core cap (it spends the fresh period's quota at full speed), far faster than its
// profile; with 4 ms it runs at its share. The quota is never below the kernel's 1 ms.
constexpr int64_t kPeriodUs = 4000;
constexpr int64_t kMinQuotaUs = 1000;

Status write_file(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  if (!out) return Status::Errorf("cannot write '{}' to {}: {}", value, path, std::strerror(errno));
  return Status::Ok();
}

Result<std::string> make_dir(const std::string& controller, const std::string& name) {
  const fs::path base = fs::path(kRoot) / controller;
  if (!fs::exists(base / "cgroup.procs")) {
    return Status::Errorf("no cgroup v1 '{}' hierarchy at {}", controller, base.string());
  }
  // The pid keeps apart the devices of two commands that run at once with the same device names.
  const fs::path dir = base / fs::path(own_cgroup_path(controller)).relative_path() /
                       fmt::format("lingualinked-{}-{}", getpid(), name);
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) return Status::Errorf("cannot create {}: {}", dir.string(), ec.message());
  return dir.string();
}

}  // namespace

Result<std::unique_ptr<Cgroup>> Cgroup::create(const std::string& name, std::optional<double> cpu,
                                               uint64_t memory) {
  if (geteuid() != 0) {
    return Status::Errorf("device {}: CPU and memory caps need root (cgroups); it runs uncapped", name);
  }
  std::unique_ptr<Cgroup> g(new Cgroup());
  std::string what;
  if (cpu) {
    LL_ASSIGN_OR_RETURN(g->cpu_dir_, make_dir("cpu", name));
    LL_RETURN_IF_ERROR(g->set_cpu(*cpu));
    if (*cpu > 0) what = fmt::format("cpu {:.2f} core", *cpu);
  }
  if (memory > 0) {
    LL_ASSIGN_OR_RETURN(g->memory_dir_, make_dir("memory", name));
    LL_RETURN_IF_ERROR(write_file(g->memory_dir_ + "/memory.limit_in_bytes", std::to_string(memory)));
    what += fmt::format("{}memory {:.0f} MiB", what.empty() ? "" : ", ", memory / 1048576.0);
  }
  g->description_ = what.empty() ? "not capped" : what;
  return g;
}

Status Cgroup::set_cpu(double cpu) {
  if (cpu_dir_.empty()) return Status::Error("this cgroup is not under the cpu controller: create it with a cpu share");
  // The period must not be shorter than the current quota when it is written, so the quota goes first.
  LL_RETURN_IF_ERROR(write_file(cpu_dir_ + "/cpu.cfs_quota_us", "-1"));
  if (cpu <= 0) return Status::Ok();
  const int64_t period = std::max<int64_t>(kPeriodUs, static_cast<int64_t>(kMinQuotaUs / cpu));
  const int64_t quota = std::max<int64_t>(kMinQuotaUs, static_cast<int64_t>(cpu * period));
  LL_RETURN_IF_ERROR(write_file(cpu_dir_ + "/cpu.cfs_period_us", std::to_string(period)));
  return write_file(cpu_dir_ + "/cpu.cfs_quota_us", std::to_string(quota));
}

Status Cgroup::add(pid_t pid) {
  for (const std::string& dir : {cpu_dir_, memory_dir_}) {
    if (!dir.empty()) LL_RETURN_IF_ERROR(write_file(dir + "/cgroup.procs", std::to_string(pid)));
  }
  return Status::Ok();
}

Cgroup::~Cgroup() {
  // The processes are gone (reaped) by now, but the kernel may take a moment to notice.
  for (const std::string& dir : {cpu_dir_, memory_dir_}) {
    if (dir.empty()) continue;
    for (int attempt = 0; attempt < 50 && rmdir(dir.c_str()) != 0 && errno == EBUSY; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace ll::emulate
