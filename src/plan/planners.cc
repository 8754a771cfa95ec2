#include "plan/planners.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace ll::plan {

Plan build_plan(const CostModel& cost, const Assignment& a, const std::string& planner, Objective objective) {
  const Evaluation e = cost.evaluate(a.ranges);
  const auto& g = cost.graph();
  Plan p;
  p.planner = planner;
  p.objective = objective;
  p.proven_optimal = a.proven_optimal;
  p.n_ctx = cost.options().n_ctx;
  p.n_parallel = cost.options().n_parallel;
  for (int d = 0; d < cost.n_devices(); ++d) {
    const StageCost& s = e.stages[d];
    DeviceAssignment da;
    da.device = d;
    da.name = cost.device(d).name;
    da.units = a.ranges[d].empty() ? model::UnitRange{} : a.ranges[d];
    da.memory_limit_bytes = cost.limit_bytes(d);
    if (!da.units.empty()) {
      da.first_unit = g.units[da.units.begin].name;
      da.last_unit = g.units[da.units.end - 1].name;
      for (int64_t u = da.units.begin; u < da.units.end; ++u) {
        da.layers += g.units[u].unit.kind == model::UnitKind::Attention;
      }
      da.compute_seconds = s.compute_seconds;
      da.transfer_seconds = s.transfer_seconds;
      da.send_bytes = s.send_bytes;
      if (s.send_to >= 0) da.send_to = cost.device(s.send_to).name;
      da.memory_bytes = s.memory_bytes;
    }
    da.joules = s.joules;  // a device that holds nothing still idles
    p.devices.push_back(std::move(da));
  }
  p.latency_seconds = e.latency_seconds;
  p.bottleneck_seconds = e.bottleneck_seconds;
  p.tokens_per_second = e.latency_seconds > 0 ? 1.0 / e.latency_seconds : 0.0;
  p.pipelined_tokens_per_second =
      e.bottleneck_seconds > 0 ? std::min(p.n_parallel * p.tokens_per_second, 1.0 / e.bottleneck_seconds) : 0.0;
  p.energy_known = cost.energy_known();
  p.joules_per_token = e.joules;
  return p;
}

Status infeasible_error(const CostModel& cost, const PlanOptions& options) {
  const auto& o = cost.options();
  const uint64_t needed = cost.weight_bytes() + cost.kv_bytes();
  uint64_t offered = 0, largest_device = 0;
  std::string per_device;
  for (int d = 0; d < cost.n_devices(); ++d) {
    offered += cost.limit_bytes(d);
    largest_device = std::max(largest_device, cost.capacity_bytes(d));
    per_device += fmt::format("{}{} {}", d ? ", " : "", cost.device(d).name, format_mib(cost.limit_bytes(d)));
  }
  int64_t largest_unit = 0;
  for (int64_t u = 1; u < cost.n_units(); ++u) {
    if (cost.memory_bytes(u) > cost.memory_bytes(largest_unit)) largest_unit = u;
  }
  std::string why, battery;
  for (int d = 0; d < cost.n_devices(); ++d) {
    if (cost.low_battery(d)) {
      battery += fmt::format(" '{}' is below {:g}% battery and holds at most {} of the {} units.", cost.device(d).name,
                             kLowBatteryPercent, cost.max_units(d), cost.n_units());
    }
  }
  if (cost.memory_bytes(largest_unit) > largest_device) {
    why = fmt::format(" Its largest unit, '{}', alone needs {}, more than any device can give it ({}).",
                      cost.graph().units[largest_unit].name, format_mib(cost.memory_bytes(largest_unit)),
                      format_mib(largest_device));
  } else if (needed + o.working_bytes <= offered) {
    why = fmt::format(
        " In total the devices have room, but not for contiguous ranges in this device order{} once every device "
        "that holds units keeps its working buffers.",
        options.pin_first ? " (the embedding on the first device)" : "");
  }
  return Status::Errorf(
      "the model does not fit: it needs {} ({} weights + {} KV cache for {} positions x {} sequence(s)), plus {} of "
      "working buffers on every device that holds units, and the devices offer {} in total ({}).{} Add a device or "
      "memory, use a smaller quantization (fewer bits per weight), or shorten --ctx / --parallel.{}",
      format_mib(needed), format_mib(cost.weight_bytes()), format_mib(cost.kv_bytes()), o.n_ctx, o.n_parallel,
      format_mib(o.working_bytes), format_mib(offered), per_device, why, battery);
}

// The energy objective's requirements, and its bound refused elsewhere.
Status check_energy_options(const CostModel& cost, const PlanOptions& options) {
  const double bound = options.max_latency_seconds;
  if (options.objective != Objective::Energy) {
    if (bound != 0) return Status::Error("a latency bound (--max-latency-ms) belongs to --objective energy");
    return Status::Ok();
  }
  if (options.planner != Planner::Milp) {
    return Status::Errorf("--objective energy needs --planner milp (the {} planner cannot bound the latency)",
                          planner_name(options.planner));
  }
  if (!std::isfinite(bound) || bound <= 0 || bound > 3600) {
    return Status::Error(
        "--objective energy needs a latency bound: --max-latency-ms above 0 and at most an hour (the least energy "
        "alone would put everything on the most frugal device, however slow)");
  }
  for (int d = 0; d < cost.n_devices(); ++d) {
    if (!cost.device(d).energy) {
      return Status::Errorf(
          "--objective energy: device '{}' has no energy figures; give them (power=, idle=, radio= or a preset in "
          "--devices, or \"energy\" in its profile)",
          cost.device(d).name);
    }
  }
  return Status::Ok();
}

Result<Plan> make_plan(const CostModel& cost, const PlanOptions& options) {
  LL_RETURN_IF_ERROR(check_energy_options(cost, options));
  Result<Assignment> a = Status::Error("");
  switch (options.planner) {
    case Planner::Milp: a = plan_milp(cost, options); break;
    case Planner::Dp: a = plan_dp(cost, options); break;
    case Planner::Even: a = plan_even(cost, options); break;
    case Planner::Memory: a = plan_memory(cost, options); break;
  }
  if (!a.ok()) return a.status();
  LL_RETURN_IF_ERROR(cost.check_assignment(a->ranges));
  if (options.pin_first && a->ranges[0].empty()) {
    return Status::Errorf("the {} split leaves the first device, '{}', empty, but it is pinned to hold the embedding",
                          planner_name(options.planner), cost.device(0).name);
  }
  Plan p = build_plan(cost, a.value(), planner_name(options.planner), options.objective);
  p.max_latency_seconds = options.max_latency_seconds;
  for (const auto& d : p.devices) {
    if (d.units.end - d.units.begin > cost.max_units(d.device)) {
      return Status::Errorf(
          "the {} split gives '{}' {} units, but it is below {:g}% battery and takes at most its share, {}; the milp "
          "and dp planners keep to it",
          planner_name(options.planner), d.name, d.units.end - d.units.begin, kLowBatteryPercent,
          cost.max_units(d.device));
    }
    if (d.memory_bytes > d.memory_limit_bytes) {
      return Status::Errorf(
          "the {} split puts {} ({}) on '{}', over its {}; the milp and dp planners split within every device's "
          "memory",
          planner_name(options.planner), d.span(), format_mib(d.memory_bytes), d.name, format_mib(d.memory_limit_bytes));
    }
  }
  return p;
}

Result<Plan> make_plan(const graph::Graph& g, const std::vector<profile::DeviceProfile>& devices,
                       const std::vector<profile::LinkProfile>& links, const CostOptions& cost, const PlanOptions& options) {
  LL_ASSIGN_OR_RETURN(CostModel c, CostModel::create(g, devices, links, cost));
  return make_plan(c, options);
}

}  // namespace ll::plan
