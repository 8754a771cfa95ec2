#include "cli/cluster_run.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "cli/progress_display.h"
#include "cluster/activation_wire.h"
#include "cluster/discovery.h"
#include "cluster/remembered.h"
#include "net/keys.h"
#include "cluster/head_setup.h"
#include "cluster/pipeline.h"
#include "cluster/throughput.h"
#include "cluster/timeline.h"

namespace ll::cli {

void add_planning_options(CLI::App& cmd, PlanningArgs& a, bool allow_list) {
  const char* planners = allow_list ? "planners, compared side by side: milp, dp, even, memory (e.g. milp,even,memory)"
                                    : "how to place the model on the workers: milp, dp, even or memory";
  cmd.add_option("--planner", a.planner, planners)->capture_default_str();
  cmd.add_option("--objective", a.objective,
                 "latency (one sequence) or throughput (pipelined sequences); default: latency for one "
                 "sequence, throughput for several")
      ->check(CLI::IsMember({"latency", "throughput"}));
  cmd.add_option("--profiles", a.profiles, "read the workers' device and link profiles from this JSON, in worker order");
  cmd.add_option("--save-profiles", a.save_profiles, "write the measured profiles to this JSON");
  cmd.add_flag("--reprofile", a.reprofile, "measure again even where a worker has a profile for this model");
  cmd.add_option("--profile-reps", a.profile_repetitions, "timed repetitions per unit when profiling")
      ->check(CLI::Range(1, 100))->capture_default_str();
}

cluster::PlanningOptions planning_options(const PlanningArgs& a, plan::Planner planner, int n_parallel) {
  cluster::PlanningOptions p;
  p.planner = planner;
  if (!a.objective.empty()) {
    auto o = plan::parse_objective(a.objective);
    if (!o.ok()) fail(o.error());
    p.objective = o.value();
  }
  p.n_parallel = n_parallel;
  p.profiles_path = a.profiles;
  p.save_profiles = a.save_profiles;
  p.profile.refresh = a.reprofile;
  p.profile.repetitions = a.profile_repetitions;
  return p;
}

void add_cluster_run_options(CLI::App& cmd, ClusterRunOptions& o) {
  cmd.add_option("--workers", o.workers, "run on these workers, in pipeline order (HOST:PORT,...)")->delimiter(',');
  cmd.add_option("--worker-keys", o.worker_keys, "the workers' public keys, in order (KEY,... or a file)");
  cmd.add_option("--key", o.key, "this head's key pair (lingualinked keygen), allowed by the workers");
  cmd.add_option("--cuts", o.cuts, "first unit of every segment but the first (\"4,9\" or \"attn[2],ffn[5]\"); "
                                   "default: planned from the workers' measured profiles");
  cmd.add_option("--parallel", o.parallel, "sequences generated at once (seeds seed, seed+1, ...)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  cmd.add_option("--ub,--ubatch-size", o.prompt_chunk,
                 "N: a prompt crosses the pipeline in chunks of N tokens, each stage computing one while the next "
                 "computes the one before; 0: chosen per prompt from the workers' profiles (without them, as given "
                 "--cuts, the whole prompt at once); N >= the prompt: the whole prompt")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_flag("--insecure", o.insecure, "plain-text links (loopback workers only)");
  add_paired_cluster_option(cmd, o.paired_cluster);
  cmd.add_flag("--send-shards", o.send_shards, "stream each worker its shard instead of letting it open the model path");
  cmd.add_option("--head-listen", o.head_listen,
                 "the head holds the first segment (with the embedding) itself, reachable by the workers here: "
                 "tcp://127.0.0.1:0 when they all run on this machine, else tcp://THIS_HOST:PORT");
  add_wire_type_option(cmd, o.wire_type);
  add_planning_options(cmd, o.planning);
  add_balance_options(cmd, o.balance);
}

void add_paired_cluster_option(CLI::App& cmd, bool& paired_cluster) {
  cmd.add_flag("--cluster", paired_cluster,
               "run on every device paired with this head (lingualinked pair) that is on the network now, found "
               "by its beacons; no --workers or keys needed")
      ->excludes("--workers")
      ->excludes("--worker-keys")
      ->excludes("--key")
      ->excludes("--insecure");
}

void resolve_paired_cluster(ClusterRunOptions& c) {
  if (!c.paired_cluster) return;
  const std::string dir = or_exit(cluster::config_dir());
  const cluster::HeadSetup setup = or_exit(cluster::paired_cluster_setup(dir, {}, print_progress));
  c.workers = setup.workers;
  c.worker_keys = setup.worker_keys;
  c.key = setup.key_path;
  c.remembered_dir = dir;
  // The profiles measured for this run give `devices` each device's last speed.
  if (c.planning.save_profiles.empty()) {
    c.planning.save_profiles = dir + "/" + cluster::kLastProfilesFile;
    std::error_code ec;
    std::filesystem::remove(c.planning.save_profiles, ec);
  }
}

namespace {

// After a --cluster run: each device's measured speed into devices.json (nothing when not profiled).
void remember_speeds(const ClusterRunOptions& c) {
  std::error_code ec;
  if (c.remembered_dir.empty() || !std::filesystem::exists(c.planning.save_profiles, ec)) return;
  const auto keys = net::parse_public_key_list(c.worker_keys);
  if (!keys.ok()) return;
  const Status st = cluster::remember_speeds(c.remembered_dir, keys.value(), c.planning.save_profiles);
  if (!st.ok()) std::fprintf(stderr, "warning: the devices' speeds are not remembered: %s\n", st.message().c_str());
}

}  // namespace

void add_wire_type_option(CLI::App& cmd, std::string& wire_type) {
  cmd.add_option("--wire-type", wire_type,
                 "hidden states between devices as f32, or f16 / bf16 at half the bytes for slow links (changes the "
                 "numerics slightly)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}))
      ->capture_default_str();
}

wire::ActivationType wire_type(const std::string& name) {
  const auto type = cluster::parse_activation_type(name);
  if (!type) fail("unknown --wire-type " + name + " (f32, f16 or bf16)");
  return *type;
}

void print_cluster_report(std::FILE* out, const std::vector<cluster::WorkerInfo>& workers, const graph::Graph& graph,
                          const std::vector<model::UnitRange>& segments, const std::vector<cluster::Generation>& gens) {
  const size_t n = workers.size();
  const cluster::GenerationTotals totals = cluster::total_generations(gens, n);
  const auto& stages = totals.stages;
  const uint64_t steps = totals.decode_steps, rtt = totals.round_trip_us, bytes = totals.wire_bytes;
  auto ms = [](uint64_t us, uint64_t count) { return count == 0 ? 0.0 : us / 1000.0 / count; };
  std::fprintf(out, "%-28s %-26s %9s %9s %9s   (ms per token)\n", "device", "units", "compute", "queue", "send");
  uint64_t busy = 0;
  for (size_t s = 0; s < n; ++s) {
    const auto& w = workers[s];
    const std::string name = w.name == w.address.endpoint ? w.name : w.name + " " + w.address.endpoint;
    std::fprintf(out, "%-28s %-26s %9.2f %9.2f %9.2f\n", name.c_str(), cluster::describe_units(graph, segments[s]).c_str(),
                 ms(stages[s].compute_us, stages[s].steps), ms(stages[s].queue_us, stages[s].steps),
                 ms(stages[s].send_us, stages[s].steps));
    busy += stages[s].compute_us + stages[s].queue_us;
  }
  if (steps > 0) {
    // The same figure as cluster-bench's: tokens/s while every sequence was generating.
    const auto tps = cluster::steady_generation_tps(gens);
    std::fprintf(out, "round trip %.2f ms per token, of which %.2f ms outside compute and queues (links, hand-offs, head); %.1f KiB on the wire "
                      "per token%s\n",
                 ms(rtt, steps), ms(rtt > busy ? rtt - busy : 0, steps), bytes / 1024.0 / steps,
                 tps.ok() ? fmt::format("; {:.2f} tokens/s over {} sequence(s)", tps.value(), gens.size()).c_str() : "");
  }
}

void add_balance_options(CLI::App& cmd, BalanceArgs& a) {
  cmd.add_option("--balance", a.balance,
                 "re-plan while generating when a device's measured speed changes, moving units and their KV "
                 "caches between devices (needs the devices' profiles: not with --cuts)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd.add_option("--timeline", a.timeline,
                 "write tokens/s and every stage's time over the run, with the rebalances, as JSON to FILE and as "
                 "an SVG chart beside it (FILE.json -> FILE.svg, else FILE.svg)");
}

cluster::BalanceOptions balance_options(const BalanceArgs& a) {
  cluster::BalanceOptions o;
  o.enabled = a.balance == "on";
  o.report = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  return o;
}

bool generate_on_cluster(cluster::Head& head, const graph::Graph& graph, const GenerationArgs& args) {
  std::vector<cluster::Request> requests =
      cluster::parallel_requests(args.prompt, args.n_predict, args.sampling, static_cast<size_t>(args.parallel));
  for (cluster::Request& r : requests) r.prompt_tokens = args.prompt_tokens;
  const bool stream = requests.size() == 1;
  if (args.on_start) args.on_start();
  auto gens = head.generate(requests, [&](size_t, const std::string& piece) {
    if (!stream) return;
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  bool ok = true;
  for (size_t i = 0; i < gens.size(); ++i) {
    if (!stream) std::printf("--- sequence %zu ---\n%s", i + 1, gens[i].text.c_str());
    std::fputc('\n', stdout);
    if (!gens[i].status.ok()) {
      std::fprintf(stderr, "error: %s\n", gens[i].status.message().c_str());
      ok = false;
    }
  }
  std::fflush(stdout);
  if (gens.size() == 1) {
    const auto& g = gens[0];
    std::fprintf(stderr, "prompt: %zu tokens in %.3f s (first token back), in chunks of %lld\n", g.prompt_tokens.size(),
                 g.prompt_seconds, static_cast<long long>(g.prompt_chunk));
    std::fprintf(stderr, "generation: %zu tokens in %.3f s (%.2f tokens/s)\n", g.tokens.size(), g.generate_seconds,
                 g.tokens.size() > 1 ? (g.tokens.size() - 1) / std::max(g.generate_seconds, 1e-9) : 0.0);
  }
  // End to end, prompts included: what a server's clients see (tools/serve_bench.mjs compares).
  size_t generated = 0;
  double last_token = 0;
  for (const auto& g : gens) {
    generated += g.tokens.size();
    if (!g.token_seconds.empty()) last_token = std::max(last_token, g.token_seconds.back());
  }
  if (last_token > 0) {
    std::fprintf(stderr, "all sequences: %zu tokens in %.3f s from the first prompt sent (%.2f tokens/s)\n", generated,
                 last_token, generated / last_token);
  }
  print_cluster_report(stderr, head.workers(), graph, head.segments(), gens);
  const auto& rebalances = head.trace().rebalances;
  const size_t switched = std::count_if(rebalances.begin(), rebalances.end(), [](const auto& e) { return !e.aborted; });
  if (!rebalances.empty()) {
    std::fprintf(stderr, "%zu rebalance(s), %zu given up\n", switched, rebalances.size() - switched);
  }
  if (!args.timeline.empty()) {
    cluster::RunTrace trace = head.trace();
    if (args.marks) trace.marks = args.marks();
    const Status written = cluster::write_timeline(trace, args.timeline);
    if (written.ok()) {
      std::fprintf(stderr, "timeline: %s and %s\n", args.timeline.c_str(), cluster::timeline_svg_path(args.timeline).c_str());
    } else {
      std::fprintf(stderr, "error: %s\n", written.message().c_str());
      ok = false;
    }
  }
  return ok;
}

cluster::HeadOptions head_options(const ClusterRunOptions& c) {
  return or_exit(cluster::head_options({c.workers, c.worker_keys, c.key, c.insecure}));
}

cluster::PipelineOptions pipeline_options(const ClusterRunOptions& c, const ModelOptions& model_options,
                                          const model::HParams& hp, int parallel) {
  cluster::PipelineOptions p;
  p.head = head_options(c);
  p.cuts = c.cuts;
  p.planning = planning_options(c.planning, or_exit(plan::parse_planner(c.planning.planner)), parallel);
  const exec::ExecOptions exec = exec_options(model_options, hp);
  p.head_listen = c.head_listen;
  p.head_threads = exec.n_threads;
  p.head_no_mmap = model_options.no_mmap;
  p.progress = print_progress;
  p.load.progress = p.planning.profile.progress = progress_bars();
  p.load.n_ctx = exec.n_ctx;
  p.load.kv_types = exec.kv_types;
  p.load.send_shards = c.send_shards;
  p.load.wire_type = wire_type(c.wire_type);
  p.balance = balance_options(c.balance);
  return p;
}

void run_on_cluster(const ClusterRunOptions& c, const ModelOptions& model_options, const GenerationArgs& args) {
  auto model = load_model_or_exit(head_model_options(model_options));
  cluster::PipelineOptions p = pipeline_options(c, model_options, model->hparams(), args.parallel);
  auto pipeline = cluster::start_pipeline(model_options.path, *model, std::move(p));
  if (!pipeline.ok()) fail(pipeline.error());
  pipeline->head->set_prompt_chunk(c.prompt_chunk);
  remember_speeds(c);
  const graph::Graph graph = graph::build_graph(*model, model_options.kv_types);
  GenerationArgs with_timeline = args;
  with_timeline.timeline = c.balance.timeline;
  const bool ok = generate_on_cluster(*pipeline->head, graph, with_timeline);
  if (!ok) throw CLI::RuntimeError(1);
}

}  // namespace ll::cli
