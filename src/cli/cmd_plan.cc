// `lingualinked plan`: assign the model's units to devices and print the predicted pipeline;
// `lingualinked profile`: measure this device's per-unit times and usable memory.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "emulate/device_spec.h"
#include "graph/graph.h"
#include "plan/cost_model.h"
#include "plan/planners.h"
#include "profile/measure.h"

namespace ll::cli {
namespace {

// "0.5ms", "2us", "0.001s", "0.001": seconds.
Result<double> parse_seconds(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string suffix(end);
  const double scale = suffix == "ms" ? 1e-3 : suffix == "us" ? 1e-6 : (suffix == "s" || suffix.empty()) ? 1 : 0;
  if (end == text.c_str() || scale == 0 || !(v >= 0)) return Status::Errorf("'{}' is not a time such as 0.5ms", text);
  return v * scale;
}

// "125M", "1G", "1e9": bytes per second, decimal K/M/G (as network rates are quoted).
Result<double> parse_rate(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  std::string suffix(end);
  if (suffix.ends_with("B/s")) suffix.resize(suffix.size() - 3);
  const double scale = suffix == "K" ? 1e3 : suffix == "M" ? 1e6 : suffix == "G" ? 1e9 : suffix.empty() ? 1 : 0;
  if (end == text.c_str() || scale == 0 || !(v > 0)) {
    return Status::Errorf("'{}' is not a rate in bytes per second such as 125M", text);
  }
  return v * scale;
}

// "key=value,key=value" -> pairs, in order.
Result<std::vector<std::pair<std::string, std::string>>> parse_pairs(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return Status::Errorf("'{}' is not key=value", item);
    out.push_back({item.substr(0, eq), item.substr(eq + 1)});
  }
  return out;
}

// "rtt=0.5ms,bw=125M" -> a link used between every pair of devices not measured.
Result<profile::LinkProfile> parse_link(const std::string& text) {
  profile::LinkProfile l;
  LL_ASSIGN_OR_RETURN(auto pairs, parse_pairs(text));
  for (const auto& [key, value] : pairs) {
    if (key == "rtt") {
      LL_ASSIGN_OR_RETURN(l.rtt_seconds, parse_seconds(value));
    } else if (key == "bw") {
      LL_ASSIGN_OR_RETURN(l.bandwidth_bytes_per_s, parse_rate(value));
    } else {
      return Status::Errorf("unknown link field '{}': use rtt and bw", key);
    }
  }
  if (l.bandwidth_bytes_per_s <= 0) return Status::Error("--link needs bw=..., e.g. rtt=0.5ms,bw=125M");
  return l;
}

// "a:speed=1.0,mem=4G;b:speed=0.5,mem=1G": what-if devices made from one measured profile,
// their times divided by `speed`; memory defaults to the measured one.
Result<std::vector<profile::DeviceProfile>> parse_devices(const std::string& text, const profile::DeviceProfile& here) {
  std::vector<profile::DeviceProfile> devices;
  std::stringstream ss(text);
  std::string entry;
  while (std::getline(ss, entry, ';')) {
    if (entry.empty()) continue;
    const size_t colon = entry.find(':');
    profile::DeviceProfile d = here;
    d.name = entry.substr(0, colon);
    if (d.name.empty()) return Status::Errorf("device '{}' has no name", entry);
    double speed = 1.0;
    if (colon != std::string::npos) {
      LL_ASSIGN_OR_RETURN(auto pairs, parse_pairs(entry.substr(colon + 1)));
      for (const auto& [key, value] : pairs) {
        if (key == "speed") {
          char* end = nullptr;
          speed = std::strtod(value.c_str(), &end);
          if (*end != '\0' || !(speed > 0)) return Status::Errorf("device '{}': speed must be > 0", d.name);
        } else if (key == "mem") {
          LL_ASSIGN_OR_RETURN(d.usable_memory_bytes, emulate::parse_byte_size(value));
        } else {
          return Status::Errorf("device '{}': unknown field '{}': use speed and mem", d.name, key);
        }
      }
    }
    for (double& t : d.decode_seconds) t /= speed;
    for (double& t : d.prompt_seconds_per_token) t /= speed;
    devices.push_back(std::move(d));
  }
  if (devices.empty()) return Status::Error("--devices lists no device");
  return devices;
}

int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::unique_ptr<model::Model> load_or_exit(const std::string& path) {
  ModelOptions o;
  o.path = path;
  return load_model_or_exit(o);
}

profile::DeviceProfile measure_or_exit(const model::Model& m, int threads, int repetitions,
                                    const profile::MeasureOptions& o) {
  std::fprintf(stderr, "profiling this device with %d thread(s)...\n", threads);
  auto p = profile::measure_device_profile(m, threads, repetitions, o);
  if (!p.ok()) fail(p.error());
  return std::move(p).value();
}

struct PlanArgs {
  std::string model;
  ClusterRunOptions cluster;  // --workers: profile these workers over the network
  std::string save_profiles;
  std::string profiles;
  std::string devices;
  std::string link = "rtt=0.5ms,bw=117M";
  std::string planner = "milp";
  std::string objective = "latency";
  int64_t n_ctx = 0;
  int n_parallel = 1;
  int64_t batch = 512;
  bool pin_head = false;
  int threads = 0;
  double time_limit = 60;
  std::string json;
  std::string svg;
};

struct ProfileArgs {
  std::string model;
  int threads = 0;
  int repetitions = 5;
  std::string mem;
  std::string name;
  std::string json;
};

void run_plan(const PlanArgs& a) {
  auto m = load_or_exit(a.model);
  const auto& hp = m->hparams();
  const graph::Graph g = graph::build_graph(*m);

  // Profiles from the file; --devices makes what-if devices from one profile (the file's
  // only device, or this machine measured now).
  profile::ClusterProfile cluster;
  if (!a.cluster.workers.empty()) {
    if (!a.profiles.empty() || !a.devices.empty()) fail("--workers measures the devices: drop --profiles and --devices");
    ll::cluster::PlanningOptions planning;
    planning.save_profiles = a.save_profiles;
    const int64_t n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min<int64_t>(hp.n_ctx_train, 4096);
    auto c = ll::cluster::profile_workers(a.model, head_options(a.cluster), planning, n_ctx, print_progress);
    if (!c.ok()) fail("profiling the workers: " + c.error());
    cluster = std::move(c).value();
  } else if (!a.profiles.empty()) {
    auto j = profile::read_json_file(a.profiles);
    if (!j.ok()) fail(j.error());
    auto c = profile::cluster_profile_from_json(j.value());
    if (!c.ok()) fail(a.profiles + ": " + c.error());
    cluster = std::move(c).value();
  }
  if (!a.devices.empty() && cluster.devices.size() > 1) {
    fail(fmt::format("--devices scales one device's profile, but {} holds {}", a.profiles, cluster.devices.size()));
  }
  if (cluster.devices.empty() || !a.devices.empty()) {
    const profile::DeviceProfile base = cluster.devices.empty()
                                         ? measure_or_exit(*m, a.threads > 0 ? a.threads : default_threads(), 3, {})
                                         : cluster.devices[0];
    cluster = {{base}, {}};
    if (!a.devices.empty()) {
      auto d = parse_devices(a.devices, base);
      if (!d.ok()) fail(d.error());
      cluster.devices = std::move(d).value();
    }
  }

  auto link = parse_link(a.link);
  if (!link.ok()) fail(link.error());
  auto objective = plan::parse_objective(a.objective);
  if (!objective.ok()) fail(objective.error());
  plan::CostOptions cost;
  cost.n_ctx = a.n_ctx > 0 ? a.n_ctx : std::min<int64_t>(hp.n_ctx_train, 4096);
  cost.n_parallel = a.n_parallel;
  int max_threads = 1;
  for (const auto& d : cluster.devices) max_threads = std::max(max_threads, d.threads);
  cost.working_bytes = plan::working_buffer_bytes(hp, cost.n_ctx, max_threads, a.batch);
  cost.default_link = link.value();
  plan::PlanOptions options;
  options.planner = a.planner;
  options.objective = objective.value();
  options.pin_first = a.pin_head;
  options.time_limit_seconds = a.time_limit;

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
  auto m = load_or_exit(a.model);
  const graph::Graph g = graph::build_graph(*m);
  profile::MeasureOptions o;
  o.name = a.name;
  if (!a.mem.empty()) {
    auto cap = emulate::parse_byte_size(a.mem);
    if (!cap.ok()) fail(cap.error());
    o.memory_limit_bytes = cap.value();
  }
  const profile::DeviceProfile p = measure_or_exit(*m, a.threads > 0 ? a.threads : default_threads(), a.repetitions, o);
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
      "whole model: %.3f ms per generated token (%.2f tokens/s) at %lld positions; prompt %.2f tokens/s "
      "in chunks of %lld\n",
      decode * 1e3, 1 / decode, static_cast<long long>(p.decode_context), 1 / prompt,
      static_cast<long long>(p.prompt_chunk));
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
  cmd->add_option("-m,--model", a->model, "model file")->required();
  cmd->add_option("--workers", a->cluster.workers, "profile these workers (HOST:PORT,...) and their links over the network")
      ->delimiter(',');
  cmd->add_option("--worker-keys", a->cluster.worker_keys, "the workers' public keys, in order (KEY,... or a file)");
  cmd->add_option("--key", a->cluster.key, "this head's key pair, allowed by the workers");
  cmd->add_flag("--insecure", a->cluster.insecure, "plain-text links (loopback workers only)");
  cmd->add_option("--save-profiles", a->save_profiles, "with --workers: write the measured profiles to this JSON");
  cmd->add_option("--profiles", a->profiles,
                  "device and link profiles, {\"devices\": [...], \"links\": [...]}, or one device's profile "
                  "(default: this machine, measured now)");
  cmd->add_option("--devices", a->devices,
                  "what-if devices scaled from one profile (--profiles with one device, else this machine measured): "
                  "\"a:speed=1.0,mem=4G;b:speed=0.5,mem=1G\"");
  cmd->add_option("--link", a->link, "link for device pairs without a measured one")->capture_default_str();
  cmd->add_option("--planner", a->planner, "milp, dp, even or memory")
      ->check(CLI::IsMember({"milp", "dp", "even", "memory"}))
      ->capture_default_str();
  cmd->add_option("--objective", a->objective, "latency (one sequence) or throughput (pipelined sequences)")
      ->check(CLI::IsMember({"latency", "throughput"}))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", a->n_ctx, "context length per sequence (default: the model's, at most 4096)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--parallel", a->n_parallel, "sequences in flight")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "prompt tokens per forward pass (sizes the working buffers)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--pin-head", a->pin_head, "the first device (the head) holds the embedding");
  cmd->add_option("-t,--threads", a->threads, "threads when profiling this machine (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--time-limit", a->time_limit, "seconds the MILP solver may branch")->capture_default_str();
  cmd->add_option("--json", a->json, "write the plan as JSON");
  cmd->add_option("--svg", a->svg, "draw the pipeline as SVG");
  cmd->callback([a] { run_plan(*a); });

  auto p = std::make_shared<ProfileArgs>();
  CLI::App* prof = app.add_subcommand("profile", "Measure this device's time per unit and its usable memory");
  prof->add_option("-m,--model", p->model, "model file")->required();
  prof->add_option("-t,--threads", p->threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  prof->add_option("-r,--repetitions", p->repetitions, "timed repetitions per unit (the median is kept)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prof->add_option("--mem", p->mem, "cap the usable memory, e.g. 2G");
  prof->add_option("--name", p->name, "device name (default: the host name)");
  prof->add_option("--json", p->json, "write the profile as JSON");
  prof->callback([p] { run_profile(*p); });
}

}  // namespace ll::cli
