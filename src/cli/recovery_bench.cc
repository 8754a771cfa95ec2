#include "cli/recovery_bench.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cli/common_options.h"
#include "cluster/cluster_bench.h"
#include "cluster/model_access.h"
#include "cluster/timeline.h"
#include "core/device_list.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"

namespace ll::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct RunOutcome {
  std::vector<cluster::Generation> generations;
  cluster::RunTrace trace;
  std::vector<cluster::FaultTime> faults;
  double seconds = 0;
};

// One run of the requests on a fresh cluster; with `disturbed`, the devices' schedules run.
Result<RunOutcome> run_once(const model::Model& model, const RecoveryBenchOptions& o,
                            const emulate::LocalClusterOptions& local, const std::vector<cluster::Request>& requests,
                            const std::string& profiles, bool disturbed) {
  const char* tag = disturbed ? "faults" : "reference";
  print_progress(fmt::format("{}: starting {} workers...", tag, local.devices.size()));
  LL_ASSIGN_OR_RETURN(auto workers, emulate::LocalCluster::start(local));
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.planning = o.planning;
  // Both runs start from the same plan: the reference measures the profiles, the other reads them.
  if (disturbed) p.planning.profiles_path = profiles;
  else p.planning.save_profiles = profiles;
  p.progress = print_progress;
  p.load.n_ctx = o.n_prompt + o.n_gen + 1;
  p.balance.enabled = o.balance;
  p.balance.report = [tag](const std::string& line) { std::fprintf(stderr, "[%s] %s\n", tag, line.c_str()); };
  LL_ASSIGN_OR_RETURN(cluster::Pipeline pipeline, cluster::start_pipeline(o.model_path, model, std::move(p)));

  std::mutex changes_mutex;
  std::vector<emulate::ScheduleChange> changes;
  Clock::time_point schedules_began{};
  if (disturbed) {
    schedules_began = Clock::now();
    LL_RETURN_IF_ERROR(workers->start_schedules([&](const emulate::ScheduleChange& c) {
      std::fprintf(stderr, "[%s] %.2f s: %s\n", tag, c.seconds, c.label.c_str());
      std::lock_guard lock(changes_mutex);
      changes.push_back(c);
    }));
  }
  RunOutcome out;
  const Clock::time_point run_began = Clock::now();
  out.generations = pipeline.head->generate(requests, [](size_t, const std::string&) {});
  out.seconds = seconds_between(run_began, Clock::now());
  out.trace = pipeline.head->trace();
  {
    std::lock_guard lock(changes_mutex);
    for (const auto& c : changes) {
      const double seconds = cluster::on_run_clock(c.seconds, schedules_began, run_began);
      out.trace.marks.push_back({seconds, c.label});
      if (c.fault) out.faults.push_back({seconds, c.device, c.label});
    }
  }
  if (disturbed && !o.timeline.empty()) LL_RETURN_IF_ERROR(cluster::write_timeline(out.trace, o.timeline));
  pipeline = cluster::Pipeline{};  // close the links before the workers go away
  workers->stop();
  return out;
}

std::string fault_text(const cluster::RecoveryFigures& f) {
  return f.fault ? fmt::format("{} at {:.2f} s", f.fault->label, f.fault->seconds) : "(none: from the last message)";
}

std::string worker_name(const RecoveryBenchResult& r, size_t w) {
  return w < r.worker_names.size() ? r.worker_names[w] : fmt::format("worker {}", w);
}

}  // namespace

size_t RecoveryBenchResult::altered_requests() const {
  size_t n = 0;
  for (const auto& c : requests) n += c.error.empty() && !c.matches();
  return n;
}

size_t RecoveryBenchResult::failed_requests() const {
  size_t n = 0;
  for (const auto& c : requests) n += !c.error.empty();
  return n;
}

bool has_fault_schedule(const std::string& devices) {
  auto described = parse_device_list(devices, {DeviceSetting::Cpu, DeviceSetting::Speed, DeviceSetting::Mem,
                                               DeviceSetting::Threads, DeviceSetting::Bw, DeviceSetting::Cores,
                                               DeviceSetting::Busy, DeviceSetting::Fail});
  if (!described.ok()) return false;
  for (const auto& d : *described) {
    if (!d.fail_schedule.empty()) return true;
  }
  return false;
}

Result<RecoveryBenchResult> run_recovery_bench(const model::Model& model, const RecoveryBenchOptions& o) {
  LL_ASSIGN_OR_RETURN(emulate::LocalClusterOptions local,
                      emulate::local_cluster_options(o.devices, o.threads, "recovery-bench"));
  local.model_dirs = {cluster::model_directory(o.model_path)};
  const std::vector<int32_t> tokens = cluster::bench_tokens(model, static_cast<size_t>(o.n_prompt + o.parallel));
  const std::vector<cluster::Request> requests =
      cluster::bench_requests(tokens, o.n_prompt, o.n_gen, static_cast<size_t>(o.parallel));
  const std::string profiles =
      (std::filesystem::temp_directory_path() / fmt::format("lingualinked-recovery-profiles-{}.json", getpid()))
          .string();
  auto reference = run_once(model, o, local, requests, profiles, /*disturbed=*/false);
  auto disturbed = reference.ok() ? run_once(model, o, local, requests, profiles, /*disturbed=*/true)
                                  : Result<RunOutcome>(reference.status());
  std::error_code ec;
  std::filesystem::remove(profiles, ec);
  if (!disturbed.ok()) return disturbed.status();
  for (size_t i = 0; i < reference->generations.size(); ++i) {
    const Status& s = reference->generations[i].status;
    if (!s.ok()) {
      return Status::Errorf("the reference run (no faults) failed request {}: {}; fix that before measuring recovery",
                            i, s.message());
    }
  }
  RecoveryBenchResult r;
  r.worker_names = disturbed->trace.worker_names;
  r.faults = disturbed->faults;
  r.recoveries = cluster::recovery_figures(disturbed->trace, disturbed->faults);
  r.rejoins = disturbed->trace.rejoins;
  r.reference_seconds = reference->seconds;
  r.run_seconds = disturbed->seconds;
  for (size_t i = 0; i < requests.size(); ++i) {
    const cluster::Generation& g = disturbed->generations[i];
    r.requests.push_back(cluster::compare_tokens(reference->generations[i].tokens, g.tokens,
                                                 g.status.ok() ? "" : std::string(g.status.message())));
  }
  return r;
}

std::string recovery_bench_markdown(const RecoveryBenchResult& r) {
  std::string out;
  for (const auto& f : r.faults) out += fmt::format("fault at {:.2f} s: {}\n", f.seconds, f.label);
  if (r.recoveries.empty()) {
    out += "\nno recovery: no worker of the pipeline was lost\n";
  } else {
    out += "\n| lost worker | fault | detected | detect | re-plan | load | replay | fault to resumed | sequences | "
           "tokens replayed | outcome |\n"
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  }
  for (const auto& f : r.recoveries) {
    const auto& e = f.event;
    if (e.failed) {
      out += fmt::format("| {} | {} | {:.2f} s | {:.0f} ms | | | | | {} | {} | failed: {} |\n",
                         worker_name(r, e.worker), fault_text(f), e.detected_seconds, f.detect_seconds * 1e3,
                         e.sequences, e.replayed_tokens, e.error);
      continue;
    }
    out += fmt::format("| {} | {} | {:.2f} s | {:.0f} ms | {:.0f} ms | {:.0f} ms | {:.0f} ms | {:.0f} ms | {} | {} "
                       "| {} |\n",
                       worker_name(r, e.worker), fault_text(f), e.detected_seconds, f.detect_seconds * 1e3,
                       f.replan_seconds * 1e3, f.load_seconds * 1e3, f.replay_seconds * 1e3, f.total_seconds * 1e3,
                       e.sequences, e.replayed_tokens, e.summary);
  }
  if (!r.rejoins.empty()) out += "\n";
  for (const auto& j : r.rejoins) out += fmt::format("{} rejoined at {:.2f} s\n", worker_name(r, j.worker), j.seconds);
  out += "\n| request | reference tokens | tokens | lost | altered | error |\n"
         "| ---: | ---: | ---: | ---: | ---: | --- |\n";
  size_t lost = 0, altered = 0;
  for (size_t i = 0; i < r.requests.size(); ++i) {
    const auto& c = r.requests[i];
    out += fmt::format("| {} | {} | {} | {} | {} | {} |\n", i, c.reference_tokens, c.tokens, c.lost, c.altered,
                       c.error);
    if (c.error.empty()) {
      lost += c.lost;
      altered += c.altered;
    }
  }
  out += fmt::format(
      "\n{} of {} requests identical to the undisturbed run; {} token(s) lost and {} altered in requests without "
      "an error; {} request(s) ended with an error; the run took {:.2f} s ({:.2f} s undisturbed)\n",
      r.requests.size() - r.altered_requests() - r.failed_requests(), r.requests.size(), lost, altered,
      r.failed_requests(), r.run_seconds, r.reference_seconds);
  return out;
}

std::string recovery_bench_json(const RecoveryBenchResult& r) {
  using nlohmann::json;
  json faults = json::array();
  for (const auto& f : r.faults) faults.push_back({{"seconds", f.seconds}, {"worker", f.worker}, {"label", f.label}});
  json recoveries = json::array();
  for (const auto& f : r.recoveries) {
    json j = cluster::recovery_json(f.event);
    j["fault"] = f.fault ? json{{"seconds", f.fault->seconds}, {"worker", f.fault->worker}, {"label", f.fault->label}}
                         : json(nullptr);
    j["detect_seconds"] = f.detect_seconds;
    j["replan_seconds"] = f.replan_seconds;
    j["load_seconds"] = f.load_seconds;
    j["replay_seconds"] = f.replay_seconds;
    j["total_seconds"] = f.total_seconds;
    recoveries.push_back(std::move(j));
  }
  json rejoins = json::array();
  for (const auto& j : r.rejoins) rejoins.push_back({{"worker", j.worker}, {"seconds", j.seconds}});
  json requests = json::array();
  for (const auto& c : r.requests) {
    requests.push_back({{"reference_tokens", c.reference_tokens},
                        {"tokens", c.tokens},
                        {"lost", c.lost},
                        {"altered", c.altered},
                        {"error", c.error}});
  }
  const json out = {{"workers", r.worker_names},
                    {"faults", std::move(faults)},
                    {"recoveries", std::move(recoveries)},
                    {"rejoins", std::move(rejoins)},
                    {"requests", std::move(requests)},
                    {"altered_requests", r.altered_requests()},
                    {"failed_requests", r.failed_requests()},
                    {"run_seconds", r.run_seconds},
                    {"reference_seconds", r.reference_seconds}};
  return out.dump(2) + "\n";
}

}  // namespace ll::cli
