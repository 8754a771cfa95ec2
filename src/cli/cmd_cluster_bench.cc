// `lingualinked cluster-bench`: speed of a pipeline of workers against a single process
// measured in the same run with the same threads per process: prompt and generation tokens/s,
// per-token latency, time per stage (compute, queue, send) and on the links, and bytes on the
// wire per token, for 1 and K concurrent sequences. The placement is planned from the workers'
// measured profiles (several planners are compared side by side, each row with the plan's
// predicted time per token beside the measured one), or given as cuts.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "emulate/local_cluster.h"
#include "cluster/pipeline.h"
#include "cluster/throughput.h"
#include "exec/segment_executor.h"

namespace ll::cli {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
  emulate::LocalCluster::kill_all_from_signal_handler();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Speed {
  double prompt_tps = 0;
  double gen_tps = 0;
};

// One process, the whole model: the prompt in one pass, then n_gen decode steps. Its rounds
// alternate with a pipeline's, so that drift in the machine's speed (its memory bandwidth
// wanders by 15-20% over minutes) falls on both alike.
class SingleProcess {
 public:
  SingleProcess(const model::Model& m, int threads, const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen)
      : ex_(m, model::all_units(m.hparams()), {.n_ctx = n_prompt + n_gen + 1, .n_threads = threads}),
        tokens_(tokens),
        n_prompt_(n_prompt),
        n_gen_(n_gen),
        hidden_(static_cast<size_t>(n_prompt * ex_.n_embd())),
        logits_(static_cast<size_t>(ex_.n_vocab())) {
    run();  // pages the weights in; not counted
  }

  // One more timed round; best() keeps the fastest of all.
  void round() {
    const Speed s = run();
    best_.prompt_tps = std::max(best_.prompt_tps, s.prompt_tps);
    best_.gen_tps = std::max(best_.gen_tps, s.gen_tps);
  }
  const Speed& best() const { return best_; }
  bool reported = false;  // its table row is printed once, before the first pipeline's

 private:
  Speed run() {
    ex_.free_sequence(0);
    if (!ex_.create_sequence(0).ok()) fail("cannot create a sequence");
    auto t0 = Clock::now();
    Status s = ex_.forward(0, 0, {tokens_.data(), static_cast<size_t>(n_prompt_)}, hidden_.data(), n_prompt_,
                           logits_.data());
    const double pp = seconds_since(t0);
    t0 = Clock::now();
    for (int64_t i = 0; i < n_gen_ && s.ok(); ++i) {
      s = ex_.forward(0, n_prompt_ + i, {&tokens_[n_prompt_ + i], 1}, hidden_.data(), 1, logits_.data());
    }
    const double tg = seconds_since(t0);
    if (!s.ok()) fail(s.message());
    return {n_prompt_ / pp, n_gen_ / tg};
  }

  exec::SegmentExecutor ex_;
  const std::vector<int32_t>& tokens_;
  int64_t n_prompt_, n_gen_;
  std::vector<float> hidden_, logits_;
  Speed best_;
};

struct ClusterRound {
  double prompt_tps = 0;  // prompt tokens of all sequences / time to the last first token
  double gen_tps = 0;     // while all sequences generate: cluster::steady_generation_tps
  double latency_ms = 0;  // mean decode round trip
  std::vector<cluster::Generation> gens;
};

ClusterRound cluster_round(cluster::Head& head, const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen,
                           int k) {
  std::vector<cluster::Request> rq(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) {
    // Distinct prompts, so no sequence is a copy of another.
    rq[i].prompt_tokens.assign(tokens.begin() + i, tokens.begin() + i + n_prompt);
    rq[i].n_predict = n_gen;
    rq[i].ignore_eos = true;
    rq[i].sampling.temp = 0;
  }
  ClusterRound r;
  r.gens = head.generate(rq, [](size_t, const std::string&) {});
  double first = 0;
  uint64_t steps = 0, rtt = 0;
  for (const auto& g : r.gens) {
    if (!g.status.ok()) fail(g.status.message());
    first = std::max(first, g.prompt_seconds);
    steps += g.decode_steps;
    rtt += g.round_trip_us;
  }
  r.prompt_tps = k * n_prompt / first;
  auto steady = cluster::steady_generation_tps(r.gens);
  if (!steady.ok()) fail(steady.error() + " (try a larger -n)");
  r.gen_tps = steady.value();
  r.latency_ms = steps ? rtt / 1000.0 / steps : 0;
  return r;
}

// Runs the rounds of one pipeline: a warm-up, then for 1 and K sequences the best of
// `repetitions`; prints a table row each and returns the rounds.
struct BenchSettings {
  std::string name;
  int threads = 1;
  int64_t n_prompt = 0, n_gen = 0;
  int parallel = 1, repetitions = 1;
  SingleProcess* baseline = nullptr;  // its rounds alternate with the one-sequence rounds
};

std::vector<std::pair<int, ClusterRound>> bench_pipeline(cluster::Pipeline& pipeline, const std::string& label,
                                                         const std::vector<int32_t>& tokens, const BenchSettings& b) {
  cluster::Head& head = *pipeline.head;
  const size_t n_workers = head.workers().size();
  std::fprintf(stderr, "%s: %zu workers: warm-up...\n", label.c_str(), n_workers);
  cluster_round(head, tokens, std::min<int64_t>(b.n_prompt, 8), 2, 1);
  std::vector<int> ks = {1};
  if (b.parallel > 1) ks.push_back(b.parallel);
  std::vector<std::pair<int, ClusterRound>> rounds;
  for (int k : ks) {
    std::fprintf(stderr, "%s: %d sequence(s) x %d rounds...\n", label.c_str(), k, b.repetitions);
    ClusterRound best;
    for (int r = 0; r < b.repetitions; ++r) {
      if (b.baseline && k == 1) b.baseline->round();
      ClusterRound round = cluster_round(head, tokens, b.n_prompt, b.n_gen, k);
      if (round.gen_tps > best.gen_tps) best = std::move(round);
    }
    if (b.baseline && !b.baseline->reported) {
      const Speed& base = b.baseline->best();
      std::printf("| %s | 1 process | 1 | %d | 1 | %.2f | %.2f | 100%% | %.2f | | | 0 |\n", b.name.c_str(), b.threads,
                  base.prompt_tps, base.gen_tps, 1000.0 / base.gen_tps);
      b.baseline->reported = true;
    }
    uint64_t bytes = 0, steps = 0;
    for (const auto& g : best.gens) {
      bytes += g.wire_bytes;
      steps += g.decode_steps;
    }
    const std::string ratio =
        b.baseline ? fmt::format("{:.0f}%", 100 * best.gen_tps / b.baseline->best().gen_tps) : "";
    // The plan's prediction: one sequence takes the ring's latency per token; k sequences overlap
    // up to the slowest stage.
    std::string predicted_ms, predicted_tps;
    if (pipeline.plan) {
      const double latency = pipeline.plan->latency_seconds;
      const double tps = std::min(k / latency, 1 / pipeline.plan->bottleneck_seconds);
      predicted_ms = fmt::format("{:.2f}", latency * 1e3);
      predicted_tps = fmt::format("{:.2f} ({:+.0f}%)", tps, 100 * (best.gen_tps / tps - 1));
    }
    std::printf("| %s | %s | %zu | %d | %d | %.2f | %.2f | %s | %.2f | %s | %s | %.1f |\n", b.name.c_str(), label.c_str(),
                n_workers, b.threads, k, best.prompt_tps, best.gen_tps, ratio.c_str(), best.latency_ms,
                predicted_ms.c_str(), predicted_tps.c_str(), steps ? bytes / 1024.0 / steps : 0.0);
    std::fflush(stdout);
    rounds.emplace_back(k, std::move(best));
  }
  return rounds;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
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
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("cluster-bench", "Measure a pipeline of workers against one process");
  cmd->add_option("-m,--model", a->model.path, "model file")->required();
  cmd->add_option("-t,--threads", a->model.threads, "threads per process (workers and the single-process run)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--local-cluster", a->local_cluster, "start N workers on this machine")->check(CLI::Range(1, 64));
  cmd->add_option("--devices", a->devices,
                  "local workers described as for `demo --devices`, e.g. \"a:cpu=0.5,bw=100mbit;b:cpu=0.25,bw=20mbit\" "
                  "(caps and link rates need root)");
  cmd->add_option("--workers", a->remote.workers, "remote workers HOST:PORT,... instead")->delimiter(',');
  cmd->add_option("--worker-keys", a->remote.worker_keys, "their public keys, in order (KEY,... or a file)");
  cmd->add_option("--key", a->remote.key, "this head's key pair");
  cmd->add_flag("--insecure", a->remote.insecure, "plain-text links (loopback workers only)");
  cmd->add_option("--cuts", a->remote.cuts, "segment cuts, instead of planning");
  add_planning_options(*cmd, a->remote.planning, /*allow_list=*/true);
  cmd->add_option("-p,--n-prompt", a->n_prompt, "prompt tokens")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--n-gen", a->n_gen, "generated tokens per sequence")->capture_default_str()
      ->check(CLI::Range(2, 100000));
  cmd->add_option("--parallel", a->parallel, "K: concurrent sequences of the second test")->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("-r,--repetitions", a->repetitions, "rounds per test (the best is reported)")->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-baseline", a->no_baseline, "skip the single-process run");
  cmd->callback([a] {
    if (a->model.threads == 0) a->model.threads = 1;
    const std::vector<std::string> planners = split_list(a->remote.planning.planner);
    if (planners.empty()) fail("--planner lists no planner");
    for (const auto& p : planners) planning_options(a->remote.planning, p, a->parallel);  // exits on a bad name
    auto model = load_model_or_exit(a->model);
    const auto& hp = model->hparams();
    const graph::Graph graph = graph::build_graph(*model);
    std::mt19937 rng(1234);
    std::vector<int32_t> tokens(static_cast<size_t>(a->n_prompt + a->n_gen + a->parallel));
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(hp.n_vocab));

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    cluster::HeadOptions head_opts;
    cluster::SegmentLoadOptions load;
    load.n_ctx = a->n_prompt + a->n_gen + a->parallel + 1;
    std::unique_ptr<emulate::LocalCluster> local;
    std::string log_path;
    if (!a->remote.workers.empty()) {
      head_opts = head_options(a->remote);
    } else {
      std::string desc = a->devices.empty() ? std::to_string(std::max(1, a->local_cluster)) : a->devices;
      auto devices = emulate::parse_devices(desc);
      if (!devices.ok()) fail(devices.error());
      std::error_code ec;
      emulate::LocalClusterOptions lo;
      lo.cli_path = fs::read_symlink("/proc/self/exe", ec).string();
      lo.devices = devices.value();
      lo.default_threads = a->model.threads;
      log_path = (fs::temp_directory_path() / fmt::format("lingualinked-bench-{}.log", getpid())).string();
      lo.log_path = log_path;
      auto started = emulate::LocalCluster::start(lo);
      if (!started.ok()) fail(started.error());
      local = std::move(started).value();
      for (const std::string& note : local->notes()) std::fprintf(stderr, "%s\n", note.c_str());
      head_opts.workers = local->addresses();
      head_opts.keys = local->head_keys();
    }
    head_opts.cancel = &g_interrupted;

    BenchSettings b;
    b.name = hp.name.empty() ? a->model.path : hp.name;
    b.threads = a->model.threads;
    b.n_prompt = a->n_prompt;
    b.n_gen = a->n_gen;
    b.parallel = a->parallel;
    b.repetitions = a->repetitions;
    std::unique_ptr<SingleProcess> base;
    if (!a->no_baseline) {
      std::fprintf(stderr, "single process, %d threads: warm-up (its rounds alternate with the pipeline's)...\n",
                   a->model.threads);
      base = std::make_unique<SingleProcess>(*model, a->model.threads, tokens, a->n_prompt, a->n_gen);
      b.baseline = base.get();
    }
    std::printf("| model | placement | workers | threads/process | sequences | pp t/s | tg t/s | tg vs 1 process | "
                "ms/token (round trip) | predicted ms/token | predicted tg t/s (measured vs) | KiB/token on the wire |\n"
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    std::fflush(stdout);

    // Each placement: its label, its pipeline's rounds and stage reports.
    struct Placement {
      std::string label;
      std::vector<std::pair<int, ClusterRound>> rounds;
      std::string report;
    };
    std::vector<Placement> results;
    auto run_one = [&](const std::string& label, cluster::Pipeline pipeline) {
      Placement r{label, bench_pipeline(pipeline, label, tokens, b), ""};
      for (const auto& [k, round] : r.rounds) {
        char* buf = nullptr;
        size_t len = 0;
        std::FILE* mem = open_memstream(&buf, &len);
        print_cluster_report(mem, *pipeline.head, graph, pipeline.segments, round.gens);
        std::fclose(mem);
        r.report += fmt::format("\n{}, {} sequence(s), per stage:\n{}", label, k, std::string(buf, len));
        std::free(buf);
      }
      if (pipeline.plan) r.report = "\n" + label + " plan:\n" + plan::format_plan(*pipeline.plan) + r.report;
      results.push_back(std::move(r));
    };
    if (!a->remote.cuts.empty()) {
      cluster::PipelineOptions p;
      p.head = head_opts;
      p.cuts = a->remote.cuts;
      p.load = load;
      auto pipeline = cluster::start_pipeline(a->model.path, *model, std::move(p));
      if (!pipeline.ok()) fail(pipeline.error());
      run_one("cuts " + a->remote.cuts, std::move(pipeline).value());
    } else {
      const cluster::PlanningOptions first = planning_options(a->remote.planning, planners[0], a->parallel);
      auto profile = cluster::profile_workers(a->model.path, head_opts, first, load.n_ctx, print_progress);
      if (!profile.ok()) fail("profiling the workers: " + profile.error());
      for (const std::string& name : planners) {
        if (g_interrupted.load()) break;
        const cluster::PlanningOptions planning = planning_options(a->remote.planning, name, a->parallel);
        auto plan = cluster::plan_pipeline(*model, profile.value(), planning, load.n_ctx);
        if (!plan.ok()) fail(name + ": " + plan.error());
        auto pipeline = cluster::start_planned_pipeline(a->model.path, *model, head_opts, plan.value(), load);
        if (!pipeline.ok()) fail(name + ": " + pipeline.error());
        run_one(name, std::move(pipeline).value());
      }
    }
    for (const Placement& r : results) std::printf("%s", r.report.c_str());
    for (const Placement& r : results) {
      if (r.rounds.size() == 2) {
        std::printf("\n%s: %d sequences give %.2fx the generation throughput of one\n", r.label.c_str(),
                    r.rounds[1].first, r.rounds[1].second.gen_tps / r.rounds[0].second.gen_tps);
      }
    }
    for (size_t i = 1; i < results.size(); ++i) {
      const double first = results[0].rounds[0].second.gen_tps, other = results[i].rounds[0].second.gen_tps;
      std::printf("%s generates %.2fx as fast as %s (one sequence)\n", results[0].label.c_str(), first / other,
                  results[i].label.c_str());
    }
    if (local) local->stop();
    std::error_code ec;
    if (!log_path.empty()) fs::remove(log_path, ec);
  });
}

}  // namespace ll::cli
