// `lingualinked plan`: assign the model's units to devices and print the predicted pipeline;
// `lingualinked profile`: measure this device's per-unit times and usable memory.
#include <cstdio>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cluster/plan_profiles.h"
#include "core/device_presets.h"
#include "core/quantity.h"
#include "core/thread_pool.h"
#include "graph/graph.h"
#include "plan/cost_model.h"
#include "plan/planners.h"
#include "profile/measure.h"
#include "plan/what_if.h"

namespace ll::cli {
namespace {

profile::DeviceProfile measure_or_exit(const model::Model& m, int threads, int repetitions,
                                    const profile::MeasureOptions& o) {
  std::fprintf(stderr, "profiling this device with %d thread(s)...\n", threads);
  return or_exit(profile::measure_device_profile(m, threads, repetitions, o));
}

struct PlanArgs {
  ModelOptions model;  // -m and --no-mmap (this machine's profile times the weights as held)
  ClusterRunOptions cluster;  // --workers: profile these workers over the network
  std::string save_profiles;
  std::string profiles;
  std::string devices;
  std::string link = "rtt=0.5ms,bw=117M";
  std::string planner = "milp";
  std::string objective = "latency";
  double max_latency_ms = 0;
  int64_t n_ctx = 0;
  model::KvTypes kv_types;
  int n_parallel = 1;
  int64_t batch = 512;
  bool pin_head = false;
  int threads = 0;
  double time_limit = 60;
  std::string json;
  std::string svg;
};

struct ProfileArgs {
  ModelOptions model;
  int threads = 0;
  int repetitions = 5;
  std::string mem;
  std::string name;
  std::string json;
  model::KvTypes kv_types;
};

void run_plan(const PlanArgs& a) {
  const plan::Planner planner = or_exit(plan::parse_planner(a.planner));
  auto m = load_model_or_exit(a.model);
  const auto& hp = m->hparams();
  if (Status st = model::check_kv_types(hp, a.kv_types); !st.ok()) fail(st.message());
  const graph::Graph g = graph::build_graph(*m, a.kv_types);

  const int64_t n_ctx = model::context_or_default(hp, a.n_ctx);
  ll::cluster::PlanProfileSource source;
  source.workers = {a.cluster.workers, a.cluster.worker_keys, a.cluster.key, a.cluster.insecure};
  source.save_profiles = a.save_profiles;
  source.local.profiles_path = a.profiles;
  source.local.what_if = a.devices;
  source.local.threads = a.threads;
  source.local.kv_types = a.kv_types;
  const profile::ClusterProfile cluster = or_exit(ll::cluster::plan_profiles(a.model.path, *m, source, n_ctx, print_progress));

  auto link = plan::parse_link(a.link);
  if (!link.ok()) fail("--link: " + link.error());
  auto objective = plan::parse_objective(a.objective);
  if (!objective.ok()) fail(objective.error());
  plan::CostOptions cost;
  cost.n_ctx = n_ctx;
  cost.n_parallel = a.n_parallel;
  cost.working_bytes = plan::working_buffer_bytes(hp, n_ctx, cluster.devices, a.batch);
  cost.default_link = link.value();
  plan::PlanOptions options;
  options.planner = planner;
  options.objective = objective.value();
  options.pin_first = a.pin_head;
  options.time_limit_seconds = a.time_limit;
  options.max_latency_seconds = a.max_latency_ms / 1e3;

  auto p = plan::make_plan(g, cluster.devices, cluster.links, cost, options);
  if (!p.ok()) fail(p.error());
  std::printf("%s", plan::format_plan(p.value()).c_str());
  if (!a.json.empty()) {
    const Status s = profile::write_json_file(a.json, plan::to_json(p.value()));
    if (!s.ok()) fail(s.message());
    std::printf("wrote %s\n", a.json.c_str());
  }
  if (!a.svg.empty()) {
    const Status s = plan::write_svg(p.value(), a.svg);
    if (!s.ok()) fail(s.message());
    std::printf("wrote %s\n", a.svg.c_str());
  }
}

void run_profile(const ProfileArgs& a) {
  auto m = load_model_or_exit(a.model);
  const graph::Graph g = graph::build_graph(*m);
  profile::MeasureOptions o;
  o.name = a.name;
  o.kv_types = a.kv_types;
  if (!a.mem.empty()) {
    auto cap = parse_byte_size(a.mem);
    if (!cap.ok()) fail(cap.error());
    o.memory_limit_bytes = cap.value();
  }
  const profile::DeviceProfile p = measure_or_exit(*m, thread_count_or_default(a.threads), a.repetitions, o);
  std::printf("device %s: %d thread(s), SIMD %s, usable memory %s\n", p.name.c_str(), p.threads, p.simd.c_str(),
              plan::format_mib(p.usable_memory_bytes).c_str());
  std::printf("%-5s %-10s %14s %22s\n", "#", "unit", "decode ms", "prompt ms/token");
  double decode = 0, prompt = 0;
  for (size_t u = 0; u < g.units.size(); ++u) {
    std::printf("%-5zu %-10s %14.4f %22.4f\n", u, g.units[u].name.c_str(), p.decode_seconds[u] * 1e3,
                p.prompt_seconds_per_token[u] * 1e3);
    decode += p.decode_seconds[u];
    prompt += p.prompt_seconds_per_token[u];
  }
  std::printf(
      "whole model: %.3f ms per generated token (%.2f tokens/s) at %lld positions (K %s, V %s); prompt %.2f "
      "tokens/s in chunks of %lld\n",
      decode * 1e3, 1 / decode, static_cast<long long>(p.decode_context), model::kv_type_name(a.kv_types.k).c_str(),
      model::kv_type_name(a.kv_types.v).c_str(), 1 / prompt, static_cast<long long>(p.prompt_chunk));
  if (!a.json.empty()) {
    const Status s = profile::write_json_file(a.json, profile::to_json(p));
    if (!s.ok()) fail(s.message());
    std::printf("wrote %s\n", a.json.c_str());
  }
}

}  // namespace

void add_plan_commands(CLI::App& app) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand("plan", "Assign the model's units to devices and predict the pipeline's speed");
  cmd->add_option("-m,--model", a->model.path, "model file")->required();
  add_no_mmap_option(*cmd, a->model);
  cmd->add_option("--workers", a->cluster.workers, "profile these workers (HOST:PORT,...) and their links over the network")
      ->delimiter(',');
  cmd->add_option("--worker-keys", a->cluster.worker_keys, "the workers' public keys, in order (KEY,... or a file)");
  cmd->add_option("--key", a->cluster.key, "this head's key pair, allowed by the workers");
  cmd->add_flag("--insecure", a->cluster.insecure, "plain-text links (loopback workers only)");
  add_paired_cluster_option(*cmd, a->cluster.paired_cluster);
  cmd->add_option("--save-profiles", a->save_profiles, "with --workers: write the measured profiles to this JSON");
  cmd->add_option("--profiles", a->profiles,
                  "device and link profiles, {\"devices\": [...], \"links\": [...]}, or one device's profile "
                  "(default: this machine, measured now)");
  cmd->add_option("--devices", a->devices,
                  "what-if devices scaled from one profile (--profiles with one device, else this machine measured), "
                  "in the grammar of `demo --devices` with the settings speed, cpu (cores of the measured device's "
                  "threads), mem, preset and the energy ones: \"a:speed=1.0,mem=4G;b:speed=0.5,mem=1G\", "
                  "\"phone-mid;phone-low:battery=15%;laptop\" (presets: " + device_preset_names() +
                  "), \"a:speed=0.5,power=4W,idle=0.4W,radio=40nJ\"");
  cmd->add_option("--link", a->link, "link for device pairs without a measured one")->capture_default_str();
  cmd->add_option("--planner", a->planner, "milp, dp, even or memory")
      ->capture_default_str();
  cmd->add_option("--objective", a->objective,
                  "latency (one sequence), throughput (pipelined sequences) or energy (least joules per token "
                  "within --max-latency-ms; milp)")
      ->check(CLI::IsMember({"latency", "throughput", "energy"}))
      ->capture_default_str();
  cmd->add_option("--max-latency-ms", a->max_latency_ms,
                  "with --objective energy: the most milliseconds one token may take through the ring")
      ->check(CLI::Range(0.001, 3600e3));
  cmd->add_option("-c,--ctx", a->n_ctx,
                  fmt::format("context length per sequence (default: the model's, at most {})", model::kMaxDefaultContext))
      ->check(context_range());
  add_kv_type_options(*cmd, a->kv_types);
  cmd->add_option("--parallel", a->n_parallel, "sequences in flight")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "prompt tokens per forward pass (sizes the working buffers)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--pin-head", a->pin_head, "the first device (the head) holds the embedding");
  cmd->add_option("-t,--threads", a->threads, "threads when profiling this machine (default: all cores)")
      ->check(thread_range());
  cmd->add_option("--time-limit", a->time_limit, "seconds the MILP solver may branch")
      ->check(seconds_range(0.001, 86400))
      ->capture_default_str();
  cmd->add_option("--json", a->json, "write the plan as JSON");
  cmd->add_option("--svg", a->svg, "draw the pipeline as SVG");
  cmd->callback([a] {
    resolve_paired_cluster(a->cluster);
    run_plan(*a);
  });

  auto p = std::make_shared<ProfileArgs>();
  CLI::App* prof = app.add_subcommand("profile", "Measure this device's time per unit and its usable memory");
  prof->add_option("-m,--model", p->model.path, "model file")->required();
  add_no_mmap_option(*prof, p->model);
  prof->add_option("-t,--threads", p->threads, "threads (default: all cores)")->check(thread_range());
  prof->add_option("-r,--repetitions", p->repetitions, "timed repetitions per unit (the median is kept)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prof->add_option("--mem", p->mem, "cap the usable memory, e.g. 2G");
  prof->add_option("--name", p->name, "device name (default: the host name)");
  prof->add_option("--json", p->json, "write the profile as JSON");
  add_kv_type_options(*prof, p->kv_types);
  prof->callback([p] { run_profile(*p); });
}

}  // namespace ll::cli
