#include "cli/soak.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "cli/common_options.h"
#include "cluster/cluster_bench.h"
#include "cluster/model_access.h"
#include "cluster/worker.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"
#include "graph/graph.h"

namespace ll::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Every few seconds one fault on a random worker, undone before the next, so that at most one
// worker is down at a time. Runs on a thread of its own until stop(); the thread then waits for
// the injector's end, because the workers it restarted die with it (LocalCluster::restart).
class FaultInjector {
 public:
  FaultInjector(emulate::LocalCluster& cluster, std::vector<std::string> names, double every, uint64_t seed)
      : cluster_(cluster), names_(std::move(names)), every_(every), random_(seed), began_(Clock::now()) {
    thread_ = std::thread([this] { run(); });
  }
  ~FaultInjector() {
    stop();
    {
      std::lock_guard lock(mutex_);
      ending_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // No fault after this returns.
  void stop() {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    wake_.wait(lock, [&] { return parked_; });
  }
  // Valid after stop().
  const std::vector<std::string>& applied() const { return applied_; }
  const std::vector<std::string>& problems() const { return problems_; }
  size_t attempted() const { return attempted_.load(); }
  // The workers' processes now (a restart changes them).
  std::vector<pid_t> pids() {
    std::lock_guard lock(acting_);
    std::vector<pid_t> out;
    for (size_t i = 0; i < names_.size(); ++i) out.push_back(cluster_.pid(i));
    return out;
  }

 private:
  // Sleeps `seconds`; false when stopped meanwhile.
  bool sleep(double seconds) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return stopping_; });
  }
  Status act(Status (emulate::LocalCluster::*fault)(size_t), size_t worker) {
    std::lock_guard lock(acting_);
    return (cluster_.*fault)(worker);
  }
  Status restart(size_t worker) {
    std::lock_guard lock(acting_);
    return cluster_.restart(worker);
  }
  void note(const std::string& what, size_t worker, const Status& s) {
    const double at = std::chrono::duration<double>(Clock::now() - began_).count();
    if (s.ok()) {
      applied_.push_back(fmt::format("{:.1f} s: {} {}", at, names_[worker], what));
      std::fprintf(stderr, "[soak] %.1f s: %s %s\n", at, names_[worker].c_str(), what.c_str());
    } else {
      problems_.push_back(fmt::format("{:.1f} s: {} could not be {}: {}", at, names_[worker], what, s.message()));
    }
  }
  void run() {
    while (sleep(every_)) {
      const size_t worker = std::uniform_int_distribution<size_t>(0, names_.size() - 1)(random_);
      const int kind = std::uniform_int_distribution<int>(0, 2)(random_);
      const double hold = every_ / 2;
      using Cluster = emulate::LocalCluster;
      if (kind == 0) {
        note("killed", worker, act(&Cluster::kill, worker));
        sleep(hold);  // the worker comes back even when stopping, so that the checks find it whole
        note("restarted", worker, restart(worker));
      } else if (kind == 1) {
        note("frozen", worker, act(&Cluster::freeze, worker));
        sleep(hold);
        note("thawed", worker, act(&Cluster::thaw, worker));
      } else {
        note("killed", worker, act(&Cluster::kill, worker));
        note("restarted", worker, restart(worker));
      }
      ++attempted_;
    }
    std::unique_lock lock(mutex_);
    parked_ = true;
    wake_.notify_all();
    wake_.wait(lock, [&] { return ending_; });
  }

  emulate::LocalCluster& cluster_;
  std::vector<std::string> names_;
  double every_;
  std::mt19937_64 random_;
  Clock::time_point began_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  bool parked_ = false;    // the faults are over; guarded by mutex_
  bool ending_ = false;    // guarded by mutex_
  std::mutex acting_;      // held while a fault acts on the cluster
  std::vector<std::string> applied_, problems_;
  std::atomic<size_t> attempted_{0};
  std::thread thread_;
};

// Sets `cancel` when `seconds` pass before disarm(): what a hang looks like to the caller.
class Watchdog {
 public:
  Watchdog(std::atomic<bool>& cancel, double seconds) {
    thread_ = std::thread([this, &cancel, seconds] {
      std::unique_lock lock(mutex_);
      if (!wake_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return done_; })) {
        fired_ = true;
        cancel.store(true);
      }
    });
  }
  ~Watchdog() { disarm(); }
  // True when it fired.
  bool disarm() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    return fired_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false, fired_ = false;
  std::thread thread_;
};

bool no_placement_error(const Status& s) { return s.message().find("cannot hold the model") != std::string::npos; }

std::string mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

// Every worker takes WorkerOptions::max_sessions fresh sessions at once: none is held by a
// session the soak left behind.
Status probe_sessions(const model::Model& model, const SoakOptions& o, const emulate::LocalCluster& cluster,
                      size_t& probed) {
  const size_t sessions = cluster::WorkerOptions{}.max_sessions;
  LL_ASSIGN_OR_RETURN(auto segments, cluster::plan_segments(graph::build_graph(model), cluster.addresses().size(), ""));
  cluster::SegmentLoadOptions load;
  load.n_ctx = o.n_prompt + o.n_gen + 1;
  std::vector<std::unique_ptr<cluster::Head>> heads;
  for (size_t k = 0; k < sessions; ++k) {
    cluster::HeadOptions h;
    h.workers = cluster.addresses();
    h.keys = cluster.head_keys();
    LL_ASSIGN_OR_RETURN(auto head, cluster::Head::connect(h));
    if (Status s = head->load(o.model_path, model, segments, load); !s.ok()) {
      return Status::Errorf("fresh session {} of {} could not load: {}", k + 1, sessions, s.message());
    }
    heads.push_back(std::move(head));
    probed = k + 1;
  }
  return Status::Ok();
}

}  // namespace

Result<SoakReport> run_soak(const model::Model& model, const SoakOptions& o) {
  SoakReport report;
  const Clock::time_point began = Clock::now();
  if (auto ns = emulate::network_namespaces(); ns.ok()) report.namespaces_before = *ns;
  LL_ASSIGN_OR_RETURN(emulate::LocalClusterOptions local, emulate::local_cluster_options(o.devices, o.threads, "soak"));
  local.model_dirs = {cluster::model_directory(o.model_path)};
  std::vector<std::string> names;
  for (const auto& d : local.devices) names.push_back(d.name);
  LL_ASSIGN_OR_RETURN(auto workers, emulate::LocalCluster::start(local));

  std::atomic<bool> cancel{false};
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.head.cancel = &cancel;
  p.planning = o.planning;
  p.progress = print_progress;
  p.load.n_ctx = o.n_prompt + o.n_gen + 1;
  LL_ASSIGN_OR_RETURN(cluster::Pipeline pipeline, cluster::start_pipeline(o.model_path, model, std::move(p)));

  // The reference: each prompt once, before any fault.
  const size_t n_prompts = std::max<size_t>(1, std::min(o.prompts, o.requests));
  const std::vector<int32_t> tokens = cluster::bench_tokens(model, static_cast<size_t>(o.n_prompt) + n_prompts);
  const std::vector<cluster::Request> prompts = cluster::bench_requests(tokens, o.n_prompt, o.n_gen, n_prompts);
  print_progress(fmt::format("soak: the reference of {} prompts, undisturbed...", n_prompts));
  std::vector<std::vector<int32_t>> reference;
  for (const auto& g : pipeline.head->generate(prompts, [](size_t, const std::string&) {})) {
    if (!g.status.ok()) return Status::Errorf("the reference run (no faults) failed: {}", g.status.message());
    reference.push_back(g.tokens);
  }

  report.memory.push_back({"head", {}});
  for (const auto& n : names) report.memory.push_back({n, {}});
  auto sample_memory = [&](const std::vector<pid_t>& pids) {
    if (auto rss = emulate::resident_bytes_of(getpid())) report.memory[0].samples.push_back(*rss);
    for (size_t i = 0; i < pids.size(); ++i) {
      if (auto rss = emulate::resident_bytes_of(pids[i])) report.memory[i + 1].samples.push_back(*rss);
    }
  };
  std::vector<pid_t> pids;
  for (size_t i = 0; i < names.size(); ++i) pids.push_back(workers->pid(i));
  sample_memory(pids);
  report.descriptors_before = emulate::open_descriptors();

  print_progress(fmt::format("soak: at least {} requests, {} at once, and {} faults, one every {:g} s...",
                             o.requests, o.in_flight, o.min_faults, o.fault_every));
  FaultInjector faults(*workers, names, o.fault_every, o.seed);
  size_t next = 0;
  while (next < o.requests || faults.attempted() < o.min_faults) {
    const size_t n = next < o.requests ? std::min(o.in_flight, o.requests - next) : o.in_flight;
    std::vector<cluster::Request> batch;
    for (size_t k = 0; k < n; ++k) batch.push_back(prompts[(next + k) % n_prompts]);
    Watchdog watchdog(cancel, o.request_timeout);
    const auto gens = pipeline.head->generate(batch, [](size_t, const std::string&) {});
    const bool hung = watchdog.disarm();
    for (size_t k = 0; k < n; ++k) {
      const size_t request = next + k;
      const auto& g = gens[k];
      ++report.requests;
      if (!g.status.ok()) {
        if (no_placement_error(g.status)) ++report.honest_errors;
        else report.violations.push_back(fmt::format("request {} ended with: {}", request, g.status.message()));
        continue;
      }
      const auto& expected = reference[request % n_prompts];
      if (g.tokens == expected) {
        ++report.identical;
        continue;
      }
      size_t same = 0;
      while (same < std::min(g.tokens.size(), expected.size()) && g.tokens[same] == expected[same]) ++same;
      report.violations.push_back(fmt::format("request {}: {} tokens where the reference has {}, the first {} alike",
                                              request, g.tokens.size(), expected.size(), same));
    }
    next += n;
    sample_memory(faults.pids());
    if (hung) {
      report.violations.push_back(fmt::format("requests {}..{} were still running after the watchdog's {:g} s",
                                              next - n, next - 1, o.request_timeout));
      break;
    }
  }
  faults.stop();
  report.faults = faults.applied();
  report.fault_count = faults.attempted();
  for (const auto& problem : faults.problems()) report.violations.push_back("fault injection: " + problem);
  report.descriptors_after = emulate::open_descriptors();
  if (report.descriptors_after > report.descriptors_before + kSoakDescriptorSlack) {
    report.violations.push_back(fmt::format("the head holds {} file descriptors, {} after the reference run",
                                            report.descriptors_after, report.descriptors_before));
  }
  for (const auto& series : report.memory) {
    if (!series.flat(kSoakMemorySlackBytes, kSoakMemorySlackFraction)) {
      report.violations.push_back(fmt::format("{}'s resident memory grew from {} to {}", series.name,
                                              mib(series.first()), mib(series.last())));
    }
  }
  pipeline = cluster::Pipeline{};  // ends its sessions
  if (Status s = probe_sessions(model, o, *workers, report.sessions_probed); !s.ok()) {
    report.violations.push_back(fmt::format("after the soak a worker has a session left: {}", s.message()));
  }
  workers->stop();
  workers.reset();
  report.children_after = emulate::child_processes();
  if (!report.children_after.empty()) {
    report.violations.push_back(fmt::format("{} child process(es) left once the cluster stopped",
                                            report.children_after.size()));
  }
  if (auto ns = emulate::network_namespaces(); ns.ok()) {
    report.namespaces_after = *ns;
    for (const auto& name : report.namespaces_after) {
      if (std::find(report.namespaces_before.begin(), report.namespaces_before.end(), name) ==
          report.namespaces_before.end()) {
        report.violations.push_back(fmt::format("network namespace {} left once the cluster stopped", name));
      }
    }
  }
  if (report.faults.empty()) report.violations.push_back("no fault was applied: ask for some with --faults");
  report.seconds = std::chrono::duration<double>(Clock::now() - began).count();
  return report;
}

std::string soak_markdown(const SoakReport& r) {
  std::string out = fmt::format(
      "soak: {} requests in {:.1f} s, {} identical to the reference, {} ended as no placement could hold the model; "
      "{} faults ({} steps)\n\n",
      r.requests, r.seconds, r.identical, r.honest_errors, r.fault_count, r.faults.size());
  out += "| process | first | last | max | flat |\n| --- | ---: | ---: | ---: | --- |\n";
  for (const auto& m : r.memory) {
    out += fmt::format("| {} | {} | {} | {} | {} |\n", m.name, mib(m.first()), mib(m.last()), mib(m.max()),
                       m.flat(kSoakMemorySlackBytes, kSoakMemorySlackFraction) ? "yes" : "no");
  }
  out += fmt::format(
      "\nfile descriptors of the head: {} after the reference run, {} at the end\n"
      "fresh sessions every worker took after the soak: {}\n"
      "child processes once the cluster stopped: {}\n",
      r.descriptors_before, r.descriptors_after, r.sessions_probed, r.children_after.size());
  out += fmt::format("network namespaces: {} before, {} after\n", r.namespaces_before.size(),
                     r.namespaces_after.size());
  out += "\nfaults:\n";
  for (const auto& f : r.faults) out += "  " + f + "\n";
  if (r.violations.empty()) {
    out += "\npassed\n";
  } else {
    out += fmt::format("\n{} violation(s):\n", r.violations.size());
    for (const auto& v : r.violations) out += "  " + v + "\n";
  }
  return out;
}

}  // namespace ll::cli
