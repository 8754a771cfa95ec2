#include "plan/plan.h"

#include <fmt/format.h>

namespace ll::plan {

using nlohmann::json;

std::string format_mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

const char* objective_name(Objective o) {
  switch (o) {
    case Objective::Latency: return "latency";
    case Objective::Throughput: return "throughput";
    case Objective::Energy: return "energy";
  }
  return "?";
}

Result<Objective> parse_objective(const std::string& name) {
  for (Objective o : {Objective::Latency, Objective::Throughput, Objective::Energy}) {
    if (name == objective_name(o)) return o;
  }
  return Status::Errorf("unknown objective '{}': use latency, throughput or energy", name);
}

std::vector<int> Plan::used_devices() const {
  std::vector<int> used;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i].units.empty()) used.push_back(static_cast<int>(i));
  }
  return used;
}

std::vector<int64_t> Plan::cuts() const {
  std::vector<int64_t> cuts;
  for (int d : used_devices()) {
    if (devices[d].units.begin > 0) cuts.push_back(devices[d].units.begin);
  }
  return cuts;
}

Result<graph::Partition> Plan::to_partition(const graph::Graph& g) const {
  int64_t next = 0;
  for (int d : used_devices()) {
    if (devices[d].units.begin != next) return Status::Errorf("the plan's unit ranges do not follow each other");
    next = devices[d].units.end;
  }
  if (next != static_cast<int64_t>(g.units.size())) {
    return Status::Errorf("the plan covers {} units but the model has {}", next, g.units.size());
  }
  return graph::partition_from_cuts(g, cuts());
}

json to_json(const Plan& p) {
  json devices = json::array();
  for (const auto& d : p.devices) {
    devices.push_back({{"device", d.device},
                       {"name", d.name},
                       {"unit_begin", d.units.begin},
                       {"unit_end", d.units.end},
                       {"first_unit", d.first_unit},
                       {"last_unit", d.last_unit},
                       {"layers", d.layers},
                       {"compute_seconds", d.compute_seconds},
                       {"transfer_seconds", d.transfer_seconds},
                       {"send_bytes", d.send_bytes},
                       {"send_to", d.send_to},
                       {"memory_bytes", d.memory_bytes},
                       {"memory_limit_bytes", d.memory_limit_bytes},
                       {"joules", d.joules}});
  }
  json j = {{"planner", p.planner},
          {"objective", objective_name(p.objective)},
          {"proven_optimal", p.proven_optimal},
          {"n_ctx", p.n_ctx},
          {"n_parallel", p.n_parallel},
          {"devices", devices},
          {"cuts", p.cuts()},
          {"latency_seconds", p.latency_seconds},
          {"bottleneck_seconds", p.bottleneck_seconds},
          {"tokens_per_second", p.tokens_per_second},
          {"pipelined_tokens_per_second", p.pipelined_tokens_per_second},
          {"energy_known", p.energy_known},
          {"joules_per_token", p.joules_per_token}};
  if (p.max_latency_seconds > 0) j["max_latency_seconds"] = p.max_latency_seconds;
  return j;
}

Result<Plan> plan_from_json(const json& j) {
  try {
    Plan p;
    p.planner = j.at("planner").get<std::string>();
    LL_ASSIGN_OR_RETURN(p.objective, parse_objective(j.at("objective").get<std::string>()));
    p.proven_optimal = j.at("proven_optimal").get<bool>();
    p.n_ctx = j.at("n_ctx").get<int64_t>();
    p.n_parallel = j.at("n_parallel").get<int>();
    for (const auto& d : j.at("devices")) {
      DeviceAssignment a;
      a.device = d.at("device").get<int>();
      a.name = d.at("name").get<std::string>();
      a.units = {d.at("unit_begin").get<int64_t>(), d.at("unit_end").get<int64_t>()};
      a.first_unit = d.at("first_unit").get<std::string>();
      a.last_unit = d.at("last_unit").get<std::string>();
      a.layers = d.at("layers").get<int64_t>();
      a.compute_seconds = d.at("compute_seconds").get<double>();
      a.transfer_seconds = d.at("transfer_seconds").get<double>();
      a.send_bytes = d.at("send_bytes").get<uint64_t>();
      a.send_to = d.at("send_to").get<std::string>();
      a.memory_bytes = d.at("memory_bytes").get<uint64_t>();
      a.memory_limit_bytes = d.at("memory_limit_bytes").get<uint64_t>();
      a.joules = d.value("joules", 0.0);  // plans saved before energy was predicted have none
      if (a.units.begin < 0 || a.units.end < a.units.begin) {
        return Status::Errorf("plan: device '{}' has an invalid unit range", a.name);
      }
      p.devices.push_back(std::move(a));
    }
    p.latency_seconds = j.at("latency_seconds").get<double>();
    p.bottleneck_seconds = j.at("bottleneck_seconds").get<double>();
    p.tokens_per_second = j.at("tokens_per_second").get<double>();
    p.pipelined_tokens_per_second = j.at("pipelined_tokens_per_second").get<double>();
    p.energy_known = j.value("energy_known", false);
    p.joules_per_token = j.value("joules_per_token", 0.0);
    p.max_latency_seconds = j.value("max_latency_seconds", 0.0);
    return p;
  } catch (const json::exception& e) {
    return Status::Errorf("not a plan: {}", e.what());
  }
}

std::string format_plan(const Plan& p) {
  std::string out =
      fmt::format("plan: {} planner, {} objective{}, context {} x {} sequence(s)\n", p.planner,
                  objective_name(p.objective), p.proven_optimal ? " (optimal)" : "", p.n_ctx, p.n_parallel);
  // Joules per token in millijoules: a phone's share of a small model is a few of them.
  const auto energy = [&](double joules) { return p.energy_known ? fmt::format(" {:>10.3f}", joules * 1e3) : ""; };
  out += fmt::format("{:<14} {:>9} {:<20} {:>6} {:>25} {:>12} {:>12}{}  {}\n", "device", "units", "", "layers",
                     "memory used / limit", "compute ms", "transfer ms", p.energy_known ? fmt::format(" {:>10}", "mJ/token") : "",
                     "sends");
  for (const auto& d : p.devices) {
    if (d.units.empty()) {
      out += fmt::format("{:<14} {:>9} {:<20} {:>6} {:>25} {:>12} {:>12}{}  {}\n", d.name, "-", "(holds nothing)", 0,
                         fmt::format("0 / {}", format_mib(d.memory_limit_bytes)), "-", "-", energy(d.joules), "-");
      continue;
    }
    const std::string sends = d.send_to.empty() ? "-" : fmt::format("{} B/token to {}", d.send_bytes, d.send_to);
    out += fmt::format("{:<14} {:>9} {:<20} {:>6} {:>25} {:>12.3f} {:>12.3f}{}  {}\n", d.name,
                       fmt::format("{}..{}", d.units.begin, d.units.end - 1), d.span(), d.layers,
                       fmt::format("{} / {}", format_mib(d.memory_bytes), format_mib(d.memory_limit_bytes)),
                       d.compute_seconds * 1e3, d.transfer_seconds * 1e3, energy(d.joules), sends);
  }
  out += fmt::format("predicted: {:.3f} ms per token through the ring = {:.2f} tokens/s for one sequence\n",
                     p.latency_seconds * 1e3, p.tokens_per_second);
  out += fmt::format("           slowest stage {:.3f} ms; with {} sequence(s) in flight {:.2f} tokens/s\n",
                     p.bottleneck_seconds * 1e3, p.n_parallel, p.pipelined_tokens_per_second);
  if (p.energy_known) {
    out += fmt::format("           energy {:.3f} mJ per token, all devices (from their energy figures: estimates){}\n",
                       p.joules_per_token * 1e3,
                       p.max_latency_seconds > 0 ? fmt::format("; latency bound {:.3f} ms", p.max_latency_seconds * 1e3)
                                                 : "");
  }
  return out;
}

}  // namespace ll::plan
