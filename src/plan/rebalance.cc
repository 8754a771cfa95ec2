#include "plan/rebalance.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

namespace ll::plan {
namespace {

double cost_per_token(const Evaluation& e, Objective objective) {
  return objective == Objective::Latency ? e.latency_seconds : e.bottleneck_seconds;
}

// owner[u] = the device holding unit u, -1 for none.
std::vector<int> owners(const std::vector<model::UnitRange>& ranges, int64_t n_units) {
  std::vector<int> owner(n_units, -1);
  for (size_t d = 0; d < ranges.size(); ++d) {
    for (int64_t u = std::max<int64_t>(ranges[d].begin, 0); u < std::min(ranges[d].end, n_units); ++u) {
      owner[u] = static_cast<int>(d);
    }
  }
  return owner;
}

std::string describe_slowdowns(const std::vector<profile::DeviceProfile>& devices,
                               const std::vector<double>& slowdown) {
  std::string out;
  for (size_t d = 0; d < devices.size(); ++d) {
    out += fmt::format("{}{} {:.2f}x", d ? ", " : "", devices[d].name, slowdown[d]);
  }
  return out;
}

Status check_input(const graph::Graph& g, const RebalanceInput& in) {
  const size_t n = in.devices.size();
  if (n == 0) return Status::Error("no devices to rebalance");
  if (in.slowdown.size() != n || in.current.size() != n) {
    return Status::Errorf("{} devices but {} slowdown factors and {} current ranges: give one of each per device", n,
                          in.slowdown.size(), in.current.size());
  }
  for (size_t d = 0; d < n; ++d) {
    if (!(in.slowdown[d] > 0) || !std::isfinite(in.slowdown[d])) {
      return Status::Errorf("the slowdown of '{}' is {}: it must be a positive number (observed / profiled time)",
                            in.devices[d].name, in.slowdown[d]);
    }
    if (in.devices[d].decode_seconds.size() != g.units.size()) {
      return Status::Errorf("the profile of '{}' times {} units but the model has {}: profile it for this model",
                            in.devices[d].name, in.devices[d].decode_seconds.size(), g.units.size());
    }
  }
  if (!in.available.empty() && in.available.size() != n) {
    return Status::Errorf("{} devices but {} availability flags: give one per device, or none", n, in.available.size());
  }
  if (!in.available.empty() && std::none_of(in.available.begin(), in.available.end(), [](bool a) { return a; })) {
    return Status::Error("no device is available to hold the model");
  }
  for (int64_t p : in.live_positions) {
    if (p < 0) return Status::Errorf("a live sequence has {} positions: it cannot be negative", p);
  }
  if (in.remaining_tokens < 0) return Status::Errorf("{} remaining tokens: it cannot be negative", in.remaining_tokens);
  return Status::Ok();
}

// The planner's placement over the available devices only; the others hold nothing.
Result<std::vector<model::UnitRange>> plan_available(const graph::Graph& g, const CostModel& all,
                                                     const std::vector<profile::DeviceProfile>& scaled,
                                                     const RebalanceInput& in) {
  std::vector<model::UnitRange> target;
  if (in.available.empty() || std::all_of(in.available.begin(), in.available.end(), [](bool a) { return a; })) {
    LL_ASSIGN_OR_RETURN(Plan plan, make_plan(all, in.plan));
    for (const auto& d : plan.devices) target.push_back(d.units);
    return target;
  }
  std::vector<profile::DeviceProfile> devices;
  std::vector<size_t> index;
  for (size_t d = 0; d < scaled.size(); ++d) {
    if (!in.available[d]) continue;
    devices.push_back(scaled[d]);
    index.push_back(d);
  }
  std::vector<profile::LinkProfile> links;
  auto kept = [&](const std::string& name) {
    return std::any_of(devices.begin(), devices.end(), [&](const auto& d) { return d.name == name; });
  };
  for (const auto& l : in.links) {
    if (kept(l.from) && kept(l.to)) links.push_back(l);
  }
  LL_ASSIGN_OR_RETURN(CostModel cost, CostModel::create(g, devices, links, in.cost));
  PlanOptions options = in.plan;
  options.pin_first = options.pin_first && in.available[0];  // the head's own device, if it is still there
  LL_ASSIGN_OR_RETURN(Plan plan, make_plan(cost, options));
  target.assign(scaled.size(), model::UnitRange{});
  for (size_t k = 0; k < plan.devices.size(); ++k) target[index[k]] = plan.devices[k].units;
  return target;
}

}  // namespace

std::string summarize_moves(const graph::Graph& g, const std::vector<std::string>& names,
                            const std::vector<model::UnitRange>& before, const std::vector<model::UnitRange>& after) {
  const int64_t n = static_cast<int64_t>(g.units.size());
  const std::vector<int> from = owners(before, n), to = owners(after, n);
  auto name = [&](int d) { return d >= 0 && d < static_cast<int>(names.size()) ? names[d] : std::string("nobody"); };
  std::string out;
  for (int64_t u = 0; u < n;) {
    if (from[u] == to[u]) {
      ++u;
      continue;
    }
    int64_t last = u;
    while (last + 1 < n && from[last + 1] == from[u] && to[last + 1] == to[u]) ++last;
    const std::string span = last == u ? g.units[u].name : g.units[u].name + ".." + g.units[last].name;
    out += fmt::format("{}{} {} -> {}", out.empty() ? "" : "; ", span, name(from[u]), name(to[u]));
    u = last + 1;
  }
  return out.empty() ? "no change" : out;
}

int64_t remaining_tokens(const std::vector<SequenceProgress>& sequences, int64_t n_ctx, Objective objective) {
  int64_t total = 0, longest = 0;
  for (const auto& s : sequences) {
    int64_t left = std::max<int64_t>(0, n_ctx - s.positions);
    if (s.n_predict >= 0) left = std::min(left, std::max<int64_t>(0, s.n_predict - s.generated));
    total += left;
    longest = std::max(longest, left);
  }
  return objective == Objective::Latency ? longest : total;
}

Result<RebalanceDecision> decide_rebalance(const graph::Graph& g, const RebalanceInput& in) {
  LL_RETURN_IF_ERROR(check_input(g, in));
  std::vector<profile::DeviceProfile> scaled = in.devices;
  for (size_t d = 0; d < scaled.size(); ++d) {
    for (double& s : scaled[d].decode_seconds) s *= in.slowdown[d];
  }
  LL_ASSIGN_OR_RETURN(CostModel cost, CostModel::create(g, scaled, in.links, in.cost));
  if (Status s = cost.check_assignment(in.current); !s.ok()) {
    return Status::Errorf("the current placement is not a placement of this model: {}", s.message());
  }
  const Objective objective = in.plan.objective;
  const Evaluation current = cost.evaluate(in.current);

  RebalanceDecision out;
  const auto t0 = std::chrono::steady_clock::now();
  LL_ASSIGN_OR_RETURN(out.target, plan_available(g, cost, scaled, in));
  out.plan_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const Evaluation target = cost.evaluate(out.target);
  out.current_cost_seconds = cost_per_token(current, objective);
  out.target_cost_seconds = cost_per_token(target, objective);
  out.gain = out.current_cost_seconds > 0
                 ? (out.current_cost_seconds - out.target_cost_seconds) / out.current_cost_seconds
                 : 0.0;

  // What moves: every unit whose owner changes brings its weights to the new owner and, for an
  // attention unit, the KV cache of every live sequence.
  const int64_t n = cost.n_units();
  const std::vector<int> from = owners(in.current, n), to = owners(out.target, n);
  uint64_t live_positions = 0;
  for (int64_t p : in.live_positions) live_positions += static_cast<uint64_t>(p);
  out.workers.resize(in.devices.size());
  for (size_t d = 0; d < in.devices.size(); ++d) {
    out.workers[d].before = in.current[d];
    out.workers[d].after = out.target[d];
  }
  std::map<std::pair<int, int>, uint64_t> kv_per_link;
  for (int64_t u = 0; u < n; ++u) {
    if (from[u] == to[u]) continue;
    out.workers[to[u]].new_weight_bytes += g.units[u].weight_bytes;
    const uint64_t kv = g.units[u].kv_bytes_per_token * live_positions;
    if (kv == 0) continue;
    out.workers[to[u]].kv_in_bytes += kv;
    out.workers[from[u]].kv_out_bytes += kv;
    kv_per_link[{from[u], to[u]}] += kv;
  }
  for (const auto& w : out.workers) {
    out.weight_bytes += w.new_weight_bytes;
    out.kv_bytes += w.kv_in_bytes;
  }
  std::vector<std::string> names;
  for (const auto& d : in.devices) names.push_back(d.name);
  out.summary = summarize_moves(g, names, in.current, out.target);

  // The stall: drain the token in flight, move the caches, and a round trip each to send the
  // caches and to switch.
  double max_rtt = 0;
  for (int a = 0; a < cost.n_devices(); ++a) {
    for (int b = 0; b < cost.n_devices(); ++b) {
      const bool involved_a = !in.current[a].empty() || !out.target[a].empty();
      const bool involved_b = !in.current[b].empty() || !out.target[b].empty();
      if (a != b && involved_a && involved_b) max_rtt = std::max(max_rtt, cost.link(a, b).rtt_seconds);
    }
  }
  out.predicted_stall_seconds = current.latency_seconds + 2 * max_rtt;
  for (const auto& [link, bytes] : kv_per_link) {
    out.predicted_stall_seconds += cost.transfer_seconds(bytes, link.first, link.second);
  }

  const char* unit = objective == Objective::Latency ? "ms per token" : "ms at the slowest stage";
  const std::string costs = fmt::format("{:.2f} -> {:.2f} {} ({:+.0f}%)", out.current_cost_seconds * 1e3,
                                        out.target_cost_seconds * 1e3, unit, -out.gain * 100);
  const double saving = (out.current_cost_seconds - out.target_cost_seconds) * static_cast<double>(in.remaining_tokens);
  const std::string slowdowns = describe_slowdowns(in.devices, in.slowdown);
  if (from == to) {
    out.reason = fmt::format("the current placement is the best one ({:.2f} {}; slowdowns {})",
                             out.current_cost_seconds * 1e3, unit, slowdowns);
  } else if (out.gain < in.min_gain) {
    out.reason = fmt::format("stays: the best placement gains {:.1f}%, under {:.0f}% ({}; slowdowns {})",
                             out.gain * 100, in.min_gain * 100, costs, slowdowns);
  } else if (saving < in.payback * out.predicted_stall_seconds) {
    out.reason = fmt::format(
        "stays: {} tokens left save {:.3f} s, under {:.0f} x the {:.3f} s stall ({}; slowdowns {})",
        in.remaining_tokens, saving, in.payback, out.predicted_stall_seconds, costs, slowdowns);
  } else {
    out.switch_now = true;
    out.reason = fmt::format("{}; {} tokens left save {:.3f} s against a {:.3f} s stall; slowdowns {}", costs,
                             in.remaining_tokens, saving, out.predicted_stall_seconds, slowdowns);
  }
  return out;
}

}  // namespace ll::plan
