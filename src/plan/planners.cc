#include "plan/planners.h"

#include <fmt/format.h>

#include <algorithm>

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
    p.devices.push_back(std::move(da));
  }
  p.latency_seconds = e.latency_seconds;
  p.bottleneck_seconds = e.bottleneck_seconds;
  p.tokens_per_second = e.latency_seconds > 0 ? 1.0 / e.latency_seconds : 0.0;
  p.pipelined_tokens_per_second =
      e.bottleneck_seconds > 0 ? std::min(p.n_parallel * p.tokens_per_second, 1.0 / e.bottleneck_seconds) : 0.0;
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
  std::string why;
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
      "memory, use a smaller quantization (fewer bits per weight), or shorten --ctx / --parallel.",
      format_mib(needed), format_mib(cost.weight_bytes()), format_mib(cost.kv_bytes()), o.n_ctx, o.n_parallel,
      format_mib(o.working_bytes), format_mib(offered), per_device, why);
}

Result<Plan> make_plan(const CostModel& cost, const PlanOptions& options) {
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
  for (const auto& d : p.devices) {
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
