// `lingualinked cluster-bench`: speed of a pipeline of workers against a single process
// measured in the same run (cluster/cluster_bench.h), printed as a markdown table, then each
// placement's plan and per-stage report. The placement is planned from the workers' measured
// profiles (several planners are compared side by side, each row with the plan's predicted time
// per token beside the measured one), or given as cuts.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>

#include "cli/balance_bench.h"
#include "cli/chunk_bench.h"
#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/recovery_bench.h"
#include "cli/soak.h"
#include "cluster/cluster_bench.h"
#include "cluster/model_access.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"

namespace ll::cli {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
  emulate::LocalCluster::kill_all_from_signal_handler();
}

// The table's row for one test of one placement.
void print_row(const std::string& model_name, int threads, const cluster::PlacementBench& p,
               const cluster::BenchRound& best, const cluster::SingleProcessBench* baseline) {
  const std::string ratio = baseline ? fmt::format("{:.0f}%", 100 * best.gen_tps / baseline->best().gen_tps) : "";
  std::string predicted_ms, predicted_tps;
  if (p.plan) {
    const double tps = cluster::predicted_tokens_per_second(*p.plan, best.sequences);
    predicted_ms = fmt::format("{:.2f}", p.plan->latency_seconds * 1e3);
    predicted_tps = fmt::format("{:.2f} ({:+.0f}%)", tps, 100 * (best.gen_tps / tps - 1));
  }
  std::printf("| %s | %s | %zu | %d | %d | %.2f | %.2f | %s | %.2f | %s | %s | %.1f |\n", model_name.c_str(),
              p.label.c_str(), p.workers.size(), threads, best.sequences, best.prompt_tps, best.gen_tps, ratio.c_str(),
              best.latency_ms, predicted_ms.c_str(), predicted_tps.c_str(), best.wire_kib_per_token);
  std::fflush(stdout);
}

std::string cluster_report(const graph::Graph& graph, const cluster::PlacementBench& p, const cluster::BenchRound& r) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* mem = open_memstream(&buf, &len);
  print_cluster_report(mem, p.workers, graph, p.segments, r.gens);
  std::fclose(mem);
  std::string text(buf, len);
  std::free(buf);
  return text;
}

// Whether any device changes while it runs (a speed schedule or faults in its description).
bool has_schedule(const std::string& devices) {
  auto specs = emulate::parse_devices(devices.empty() ? "1" : devices);
  return specs.ok() && std::any_of(specs->begin(), specs->end(),
                                   [](const auto& d) { return !d.schedule.empty() || !d.faults.empty(); });
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void require_local_devices(const auto& a, const char* mode) {
  if (!a.remote.workers.empty() || !a.remote.cuts.empty()) {
    fail(fmt::format("{} runs emulated local devices (--devices or --local-cluster) planned from their profiles: "
                     "drop --workers and --cuts",
                     mode));
  }
}

// --balance off,on: one run per setting; the table (or JSON) on stdout.
void run_balance_command(const auto& a) {
  require_local_devices(a, "--balance");
  BalanceBenchOptions o;
  o.model_path = a.model.path;
  o.devices = a.devices.empty() ? std::to_string(std::max(3, a.local_cluster)) : a.devices;
  o.threads = a.model.threads == 0 ? 1 : a.model.threads;
  const std::vector<plan::Planner> planners = or_exit(plan::parse_planner_list(a.remote.planning.planner));
  o.planning = planning_options(a.remote.planning, planners.front(), a.parallel);
  o.n_prompt = a.n_prompt;
  o.n_gen = a.n_gen;
  o.parallel = a.parallel;
  for (const std::string& s : a.balance) o.settings.push_back(s == "on");
  if (o.settings.empty()) o.settings.push_back(true);
  o.timeline = a.timeline;
  auto model = load_model_or_exit(a.model);
  install_signal_handlers();
  const auto results = or_exit(run_balance_bench(*model, o));
  const std::string text = a.output == "json" ? balance_bench_json(results) : balance_bench_markdown(results);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// Devices with fail= schedules: an undisturbed reference run, then the run with the faults;
// exits 1 when a request's tokens differ from the reference's without an error.
void run_recovery_command(const auto& a) {
  require_local_devices(a, "a device with fail=");
  RecoveryBenchOptions o;
  o.model_path = a.model.path;
  o.devices = a.devices;
  o.threads = a.model.threads == 0 ? 1 : a.model.threads;
  const std::vector<plan::Planner> planners = or_exit(plan::parse_planner_list(a.remote.planning.planner));
  o.planning = planning_options(a.remote.planning, planners.front(), a.parallel);
  o.balance = a.balance.empty() || a.balance.front() == "on";
  o.n_prompt = a.n_prompt;
  o.n_gen = a.n_gen;
  o.parallel = a.parallel;
  o.timeline = a.timeline;
  auto model = load_model_or_exit(a.model);
  install_signal_handlers();
  const RecoveryBenchResult result = or_exit(run_recovery_bench(*model, o));
  const std::string text = a.output == "json" ? recovery_bench_json(result) : recovery_bench_markdown(result);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (result.altered_requests() > 0) {
    fail(fmt::format("{} request(s) lost or altered tokens against the undisturbed run", result.altered_requests()));
  }
}

// --soak N: exits 1 on any violation.
void run_soak_command(const auto& a) {
  require_local_devices(a, "--soak");
  SoakOptions o;
  o.model_path = a.model.path;
  if (!a.devices.empty()) o.devices = a.devices;
  else if (a.local_cluster > 0) o.devices = std::to_string(a.local_cluster);
  o.threads = a.model.threads == 0 ? 1 : a.model.threads;
  const std::vector<plan::Planner> planners = or_exit(plan::parse_planner_list(a.remote.planning.planner));
  o.planning = planning_options(a.remote.planning, planners.front(), static_cast<int>(a.in_flight));
  o.requests = a.soak;
  o.min_faults = a.faults;
  o.in_flight = a.in_flight;
  o.fault_every = a.fault_every;
  o.seed = a.seed;
  o.n_prompt = a.n_prompt;
  o.n_gen = a.n_gen;
  auto model = load_model_or_exit(a.model);
  install_signal_handlers();
  const SoakReport report = or_exit(run_soak(*model, o));
  const std::string text = soak_markdown(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (!report.violations.empty()) fail(fmt::format("the soak found {} violation(s)", report.violations.size()));
}

// --ubatch-size A,B,...: the prompt's time in chunks of each size, alternating, on one pipeline.
void run_chunk_command(const auto& a) {
  require_local_devices(a, "--ubatch-size with several sizes");
  ChunkBenchOptions o;
  o.model_path = a.model.path;
  o.devices = a.devices.empty() ? std::to_string(std::max(3, a.local_cluster)) : a.devices;
  o.threads = a.model.threads == 0 ? 1 : a.model.threads;
  const std::vector<plan::Planner> planners = or_exit(plan::parse_planner_list(a.remote.planning.planner));
  o.planning = planning_options(a.remote.planning, planners.front(), 1);
  o.n_prompt = a.n_prompt;
  o.sizes = a.ubatch;
  o.repetitions = a.repetitions;
  auto model = load_model_or_exit(a.model);
  install_signal_handlers();
  const auto results = or_exit(run_chunk_bench(*model, o));
  const std::string text = chunk_bench_markdown(results, a.n_prompt);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace
void add_cluster_bench_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    int local_cluster = 0;
    std::string devices;
    ClusterRunOptions remote;
    int64_t n_prompt = 64;
    int64_t n_gen = 32;
    int parallel = 3;
    int repetitions = 3;
    bool no_baseline = false;
    std::vector<std::string> balance;
    std::string output = "md";
    std::string timeline;
    size_t soak = 0;
    size_t in_flight = 3;
    size_t faults = 10;
    double fault_every = 3;
    uint64_t seed = 1;
    std::vector<int64_t> ubatch;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("cluster-bench", "Measure a pipeline of workers against one process");
  cmd->add_option("-m,--model", a->model.path, "model file")->required();
  cmd->add_option("-t,--threads", a->model.threads, "threads per process (workers and the single-process run)")
      ->check(CLI::PositiveNumber)->check(thread_range());
  add_no_mmap_option(*cmd, a->model);
  cmd->add_option("--local-cluster", a->local_cluster, "start N workers on this machine")->check(CLI::Range(1, 64));
  cmd->add_option("--devices", a->devices,
                  "local workers described as for `demo --devices`, e.g. \"a:cpu=0.5,bw=100mbit;b:cpu=0.25,bw=20mbit\" "
                  "(settings cpu, mem, threads, bw, cores, host, busy and fail; caps, link rates, hosts and drop faults need root)");
  cmd->add_option("--workers", a->remote.workers, "remote workers HOST:PORT,... instead")->delimiter(',');
  cmd->add_option("--worker-keys", a->remote.worker_keys, "their public keys, in order (KEY,... or a file)");
  cmd->add_option("--key", a->remote.key, "this head's key pair");
  cmd->add_flag("--insecure", a->remote.insecure, "plain-text links (loopback workers only)");
  cmd->add_option("--cuts", a->remote.cuts, "segment cuts, instead of planning");
  add_planning_options(*cmd, a->remote.planning, /*allow_list=*/true);
  add_wire_type_option(*cmd, a->remote.wire_type);
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--n-gen", a->n_gen, "generated tokens per sequence")->capture_default_str()
      ->check(CLI::Range(2, 100000));
  cmd->add_option("--parallel", a->parallel, "K: concurrent sequences of the second test")->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("-r,--repetitions", a->repetitions, "rounds per test (the best is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-baseline", a->no_baseline, "skip the single-process run");
  cmd->add_option("--ub,--ubatch-size", a->ubatch,
                  "N: prompts cross the pipeline in chunks of N tokens (0: chosen from the profiles; N >= -p: the "
                  "whole prompt at once). Several (e.g. 512,0): instead time the -p prompt on the local devices in "
                  "chunks of each size in turn, -r rounds, and print each one's prompt time and its speed-up over "
                  "the first")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--balance", a->balance,
                  "on or off: re-plan while generating (default on). Both (off,on), or devices whose speed changes: "
                  "instead run the same local devices, speed schedule and requests once per setting, each on fresh "
                  "workers from the same profiles, and report tokens/s before the first speed change and after it, "
                  "the rebalances, the time to the first switch and the longest stall; --parallel sequences of -n "
                  "tokens")
      ->delimiter(',')
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--soak", a->soak,
                  "N: instead drive at least N short requests (-p prompt and -n generated tokens, --in-flight at "
                  "once; more until --faults faults were made) through "
                  "the local devices (default a;b;c) while a random worker is killed and restarted, frozen and thawed, "
                  "or restarted every --fault-every seconds; check every request against an undisturbed run of its "
                  "prompt, a watchdog per request, flat memory, and no session, file descriptor, process or network "
                  "namespace left over; exit 1 on any violation")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--faults", a->faults, "with --soak: requests go on until this many faults were made")
      ->capture_default_str();
  cmd->add_option("--in-flight", a->in_flight, "with --soak: requests at once")->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--fault-every", a->fault_every, "with --soak: seconds between faults")->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  cmd->add_option("--seed", a->seed, "with --soak: which worker and which fault, in turn")->capture_default_str();
  cmd->add_option("-o,--output", a->output, "with --balance or fail= devices: md (a table) or json")
      ->check(CLI::IsMember({"md", "json"}))
      ->capture_default_str();
  cmd->add_option("--timeline", a->timeline,
                  "with --balance: write each setting's timeline (JSON and SVG), FILE.json as FILE-off.json and "
                  "FILE-on.json; with fail= devices: the disturbed run's, with its faults and recoveries");
  cmd->callback([a] {
    if (a->soak > 0) return run_soak_command(*a);
    if (a->ubatch.size() > 1) return run_chunk_command(*a);
    if (has_fault_schedule(a->devices)) return run_recovery_command(*a);
    if (a->balance.size() > 1 || has_schedule(a->devices)) return run_balance_command(*a);
    if (a->model.threads == 0) a->model.threads = 1;
    const std::vector<plan::Planner> planners = or_exit(plan::parse_planner_list(a->remote.planning.planner));
    cluster::ClusterBenchOptions o;
    for (plan::Planner p : planners) o.planners.push_back(planning_options(a->remote.planning, p, a->parallel));
    auto model = load_model_or_exit(a->model);
    const auto& hp = model->hparams();
    const graph::Graph graph = graph::build_graph(*model);
    o.tokens = cluster::bench_tokens(*model, static_cast<size_t>(a->n_prompt + a->n_gen + a->parallel));

    install_signal_handlers();

    o.load.n_ctx = a->n_prompt + a->n_gen + a->parallel + 1;
    o.load.wire_type = wire_type(a->remote.wire_type);
    std::unique_ptr<emulate::LocalCluster> local;
    std::string log_path;
    if (!a->remote.workers.empty()) {
      o.head = head_options(a->remote);
    } else {
      const std::string desc = a->devices.empty() ? std::to_string(std::max(1, a->local_cluster)) : a->devices;
      emulate::LocalClusterOptions lo = or_exit(emulate::local_cluster_options(desc, a->model.threads, "bench"));
      lo.model_dirs = {cluster::model_directory(a->model.path)};
      lo.no_mmap = a->model.no_mmap;  // as the one-process run beside it
      log_path = lo.log_path;
      local = or_exit(emulate::LocalCluster::start(std::move(lo)));
      for (const std::string& note : local->notes()) std::fprintf(stderr, "%s\n", note.c_str());
      o.head.workers = local->addresses();
      o.head.keys = local->head_keys();
    }
    o.head.cancel = &g_interrupted;
    o.cancel = &g_interrupted;
    o.model_path = a->model.path;
    o.cuts = a->remote.cuts;
    o.n_prompt = a->n_prompt;
    o.n_gen = a->n_gen;
    o.prompt_chunk = a->ubatch.empty() ? 0 : a->ubatch.front();
    o.parallel = a->parallel;
    o.repetitions = a->repetitions;
    o.progress = print_progress;
    o.balance = balance_options({a->balance.empty() ? "on" : a->balance.front(), ""});

    const std::string model_name = hp.name.empty() ? a->model.path : hp.name;
    const int threads = a->model.threads;
    std::unique_ptr<cluster::SingleProcessBench> base;
    if (!a->no_baseline) {
      std::fprintf(stderr, "single process, %d threads: warm-up (its rounds alternate with the pipeline's)...\n",
                   threads);
      base = or_exit(cluster::SingleProcessBench::start(*model, threads, o.tokens, a->n_prompt, a->n_gen));
      o.baseline = base.get();
    }
    std::printf("| model | placement | workers | threads/process | sequences | pp t/s | tg t/s | tg vs 1 process | "
                "ms/token (round trip) | predicted ms/token | predicted tg t/s (measured vs) | KiB/token on the wire |\n"
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    std::fflush(stdout);
    bool baseline_printed = false;  // its row comes once, before the first pipeline's
    o.on_round = [&](const cluster::PlacementBench& p, const cluster::BenchRound& best) {
      if (base && !baseline_printed) {
        const cluster::BenchSpeed& s = base->best();
        std::printf("| %s | 1 process | 1 | %d | 1 | %.2f | %.2f | 100%% | %.2f | | | 0 |\n", model_name.c_str(), threads,
                    s.prompt_tps, s.gen_tps, 1000.0 / s.gen_tps);
        baseline_printed = true;
      }
      print_row(model_name, threads, p, best, base.get());
    };
    const std::vector<cluster::PlacementBench> results = or_exit(cluster::run_cluster_bench(*model, o));

    for (const cluster::PlacementBench& p : results) {
      if (p.plan) std::printf("\n%s plan:\n%s", p.label.c_str(), plan::format_plan(*p.plan).c_str());
      for (const cluster::BenchRound& r : p.rounds) {
        std::printf("\n%s, %d sequence(s), per stage:\n%s", p.label.c_str(), r.sequences,
                    cluster_report(graph, p, r).c_str());
      }
    }
    for (const cluster::PlacementBench& p : results) {
      if (p.rounds.size() == 2) {
        std::printf("\n%s: %d sequences give %.2fx the generation throughput of one\n", p.label.c_str(),
                    p.rounds[1].sequences, p.rounds[1].gen_tps / p.rounds[0].gen_tps);
      }
    }
    for (size_t i = 1; i < results.size(); ++i) {
      const double first = results[0].rounds[0].gen_tps, other = results[i].rounds[0].gen_tps;
      std::printf("%s generates %.2fx as fast as %s (one sequence)\n", results[0].label.c_str(), first / other,
                  results[i].label.c_str());
    }
    if (local) local->stop();
    std::error_code ec;
    if (!log_path.empty()) fs::remove(log_path, ec);
  });
}

}  // namespace ll::cli
