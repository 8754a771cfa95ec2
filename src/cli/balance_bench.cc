#include "cli/balance_bench.h"

#include <fmt/format.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cluster/cluster_bench.h"
#include "cluster/model_access.h"
#include "cluster/timeline.h"
#include "cli/common_options.h"
#include "emulate/local_setup.h"

namespace ll::cli {
namespace {

// The first time any device's speed changes (its schedule's first entry after 0 s), or 0.
double first_change(const std::vector<emulate::DeviceSpec>& devices) {
  double first = 0;
  for (const auto& d : devices) {
    for (const auto* values : {&d.schedule.cpu, &d.schedule.busy}) {
      for (const TimedValue& v : *values) {
        if (v.seconds > 0 && (first == 0 || v.seconds < first)) first = v.seconds;
      }
    }
  }
  return first;
}

// "run.json" -> "run-on.json"; "run" -> "run-on".
std::string with_setting(const std::string& path, bool balance) {
  const std::filesystem::path p(path);
  const std::string tag = balance ? "-on" : "-off";
  return (p.parent_path() / (p.stem().string() + tag + p.extension().string())).string();
}

std::string seconds_or_dash(const std::optional<double>& s, const char* format) {
  return s ? fmt::format(fmt::runtime(format), *s) : "-";
}

}  // namespace

Result<std::vector<BalanceBenchResult>> run_balance_bench(const model::Model& model, const BalanceBenchOptions& o) {
  LL_ASSIGN_OR_RETURN(emulate::LocalClusterOptions local, emulate::local_cluster_options(o.devices, o.threads, "bench"));
  local.model_dirs = {cluster::model_directory(o.model_path)};
  const double change = first_change(local.devices);
  const std::vector<int32_t> tokens = cluster::bench_tokens(model, static_cast<size_t>(o.n_prompt + o.parallel));
  const std::string profiles =
      (std::filesystem::temp_directory_path() / fmt::format("lingualinked-balance-profiles-{}.json", getpid())).string();
  std::vector<BalanceBenchResult> results;
  for (size_t run = 0; run < o.settings.size(); ++run) {
    const bool balance = o.settings[run];
    print_progress(fmt::format("balance {}: starting {} workers...", balance ? "on" : "off", local.devices.size()));
    LL_ASSIGN_OR_RETURN(auto workers, emulate::LocalCluster::start(local));
    cluster::PipelineOptions p;
    p.head.workers = workers->addresses();
    p.head.keys = workers->head_keys();
    p.planning = o.planning;
    // Every setting starts from the same plan: the first run measures the profiles, the others read them.
    if (run == 0) p.planning.save_profiles = profiles;
    else p.planning.profiles_path = profiles;
    p.progress = print_progress;
    p.load.n_ctx = o.n_prompt + o.n_gen + 1;
    p.balance.enabled = balance;
    p.balance.report = [balance](const std::string& line) {
      std::fprintf(stderr, "[balance %s] %s\n", balance ? "on" : "off", line.c_str());
    };
    LL_ASSIGN_OR_RETURN(cluster::Pipeline pipeline, cluster::start_pipeline(o.model_path, model, std::move(p)));
    const std::vector<cluster::Request> requests =
        cluster::bench_requests(tokens, o.n_prompt, o.n_gen, static_cast<size_t>(o.parallel));
    std::mutex marks_mutex;
    std::vector<cluster::RunTrace::Mark> marks;
    LL_RETURN_IF_ERROR(workers->start_schedules([&](const emulate::ScheduleChange& c) {
      std::fprintf(stderr, "[balance %s] %.2f s: %s\n", balance ? "on" : "off", c.seconds, c.label.c_str());
      std::lock_guard lock(marks_mutex);
      marks.push_back({c.seconds, c.label});
    }));
    const auto gens = pipeline.head->generate(requests, [](size_t, const std::string&) {});
    for (const auto& g : gens) {
      if (!g.status.ok()) return Status::Errorf("balance {}: {}", balance ? "on" : "off", g.status.message());
    }
    cluster::RunTrace trace = pipeline.head->trace();
    {
      std::lock_guard lock(marks_mutex);
      trace.marks = marks;
    }
    BalanceBenchResult r;
    r.balance = balance;
    r.sequences = o.parallel;
    r.change_seconds = change;
    r.figures = cluster::balance_figures(trace, change);
    if (trace.tokens.size() > 1) {
      r.tokens_per_second = (trace.tokens.size() - 1) / (trace.tokens.back().seconds - trace.tokens.front().seconds);
    }
    r.rebalances = trace.rebalances;
    results.push_back(std::move(r));
    if (!o.timeline.empty()) LL_RETURN_IF_ERROR(cluster::write_timeline(trace, with_setting(o.timeline, balance)));
    pipeline = cluster::Pipeline{};  // close the links before the workers go away
    workers->stop();
  }
  std::error_code ec;
  std::filesystem::remove(profiles, ec);
  return results;
}

std::string balance_bench_markdown(const std::vector<BalanceBenchResult>& results) {
  std::string out =
      "| balance | sequences | tg t/s before the change | tg t/s from the change | whole run t/s | rebalances | "
      "change to first switch | longest stall | longest token gap |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& r : results) {
    const auto& f = r.figures;
    out += fmt::format("| {} | {} | {} | {} | {:.2f} | {} | {} | {:.0f} ms | {:.0f} ms |\n", r.balance ? "on" : "off",
                       r.sequences, seconds_or_dash(f.tokens_per_second_before, "{:.2f}"),
                       seconds_or_dash(f.tokens_per_second_after, "{:.2f}"), r.tokens_per_second, f.rebalances,
                       seconds_or_dash(f.seconds_to_first_switch, "{:.2f} s"), f.longest_stall_seconds * 1e3,
                       f.longest_token_gap_seconds * 1e3);
  }
  const BalanceBenchResult* off = nullptr;
  const BalanceBenchResult* on = nullptr;
  for (const auto& r : results) (r.balance ? on : off) = &r;
  if (off && on && off->figures.tokens_per_second_after && on->figures.tokens_per_second_after) {
    out += fmt::format("\nfrom the change on, balancing gives {:.2f}x the tokens/s of the fixed plan\n",
                       *on->figures.tokens_per_second_after / *off->figures.tokens_per_second_after);
  }
  for (const auto& r : results) {
    for (const auto& e : r.rebalances) {
      out += fmt::format("balance {}: {:.2f} s {} {} (stall {:.0f} ms, predicted gain {:.0f}%)\n",
                         r.balance ? "on" : "off", e.switched_seconds, e.aborted ? "given up:" : "switched:", e.summary,
                         e.stall_seconds * 1e3, e.predicted_gain * 100);
    }
  }
  return out;
}

std::string balance_bench_json(const std::vector<BalanceBenchResult>& results) {
  nlohmann::json j = nlohmann::json::array();
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  for (const auto& r : results) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : r.rebalances) events.push_back(cluster::rebalance_json(e));
    j.push_back({{"balance", r.balance ? "on" : "off"},
                 {"sequences", r.sequences},
                 {"change_seconds", r.change_seconds},
                 {"tokens_per_second_before", optional(r.figures.tokens_per_second_before)},
                 {"tokens_per_second_after", optional(r.figures.tokens_per_second_after)},
                 {"tokens_per_second", r.tokens_per_second},
                 {"rebalances", r.figures.rebalances},
                 {"seconds_to_first_switch", optional(r.figures.seconds_to_first_switch)},
                 {"longest_stall_seconds", r.figures.longest_stall_seconds},
                 {"longest_token_gap_seconds", r.figures.longest_token_gap_seconds},
                 {"events", events}});
  }
  return j.dump(2) + "\n";
}

}  // namespace ll::cli
