#include "cluster/pipeline.h"

#include <fmt/format.h>

#include <algorithm>

#include "cluster/model_access.h"
#include "graph/partition.h"
#include "plan/cost_model.h"
#include "plan/planners.h"

namespace ll::cluster {

Result<std::vector<model::UnitRange>> plan_segments(const graph::Graph& graph, size_t n_workers,
                                                    const std::string& cuts_text) {
  std::vector<int64_t> cuts;
  if (cuts_text.empty()) {
    cuts = graph::even_layer_cuts(graph, static_cast<int>(n_workers));
  } else {
    LL_ASSIGN_OR_RETURN(cuts, graph::parse_cuts(graph, cuts_text));
  }
  if (cuts.size() + 1 != n_workers) {
    return Status::Errorf("{} segments for {} workers (the model has too few layers, or --cuts gives {} cuts)",
                          cuts.size() + 1, n_workers, cuts.size());
  }
  LL_ASSIGN_OR_RETURN(graph::Partition p, graph::partition_from_cuts(graph, cuts));
  return p.segments;
}

std::string describe_units(const graph::Graph& graph, model::UnitRange r) {
  if (r.empty()) return "nothing";
  if (r.end - r.begin == 1) return graph.units[r.begin].name;
  return fmt::format("{} .. {}", graph.units[r.begin].name, graph.units[r.end - 1].name);
}

Result<profile::ClusterProfile> profile_workers(const std::string& model_path, const HeadOptions& head,
                                             const PlanningOptions& planning, int64_t n_ctx, model::KvTypes kv_types,
                                             const ProgressNote& progress) {
  profile::ClusterProfile profile;
  if (!planning.profiles_path.empty()) {
    LL_ASSIGN_OR_RETURN(auto j, profile::read_json_file(planning.profiles_path));
    auto c = profile::cluster_profile_from_json(j);
    if (!c.ok()) return Status::Errorf("{}: {}", planning.profiles_path, c.error());
    profile = std::move(c).value();
    if (profile.devices.size() != head.workers.size()) {
      return Status::Errorf("{} holds {} device profiles for {} workers", planning.profiles_path,
                            profile.devices.size(), head.workers.size());
    }
    return profile;
  }
  LL_ASSIGN_OR_RETURN(auto h, Head::connect(head));
  ProfileOptions measure = planning.profile;
  measure.decode_context = std::clamp<int64_t>(n_ctx / 2, 1, measure.decode_context);
  measure.kv_types = kv_types;
  LL_ASSIGN_OR_RETURN(profile, h->profile(model_path, measure, progress));
  if (!planning.save_profiles.empty()) {
    LL_RETURN_IF_ERROR(profile::write_json_file(planning.save_profiles, profile::to_json(profile)));
  }
  return profile;
}

Result<BalancePlanning> balance_planning(const model::Model& model, const profile::ClusterProfile& profile,
                                         const PlanningOptions& planning, int64_t n_ctx, model::KvTypes kv_types) {
  const graph::Graph graph = graph::build_graph(model, kv_types);
  for (const auto& d : profile.devices) {
    if (d.decode_seconds.size() != graph.units.size()) {
      return Status::Errorf("device {}: its profile has {} units, the model {}: profile it for this model", d.name,
                            d.decode_seconds.size(), graph.units.size());
    }
  }
  BalancePlanning out;
  out.profile = profile;
  out.cost.n_ctx = n_ctx;
  out.cost.n_parallel = planning.n_parallel;
  // The head sends a prompt as one step, so a worker's buffers grow to the prompt's length.
  out.cost.working_bytes =
      plan::working_buffer_bytes(model.hparams(), n_ctx, profile.devices, std::min<int64_t>(n_ctx, 512));
  out.plan.planner = planning.planner;
  out.plan.objective = planning.objective.value_or(planning.n_parallel > 1 ? plan::Objective::Throughput
                                                                           : plan::Objective::Latency);
  out.plan.pin_first = planning.pin_first;
  return out;
}

Result<plan::Plan> plan_pipeline(const model::Model& model, const profile::ClusterProfile& profile,
                                 const PlanningOptions& planning, int64_t n_ctx, model::KvTypes kv_types) {
  LL_ASSIGN_OR_RETURN(BalancePlanning inputs, balance_planning(model, profile, planning, n_ctx, kv_types));
  return plan::make_plan(graph::build_graph(model, kv_types), profile.devices, profile.links, inputs.cost, inputs.plan);
}

Result<Pipeline> start_planned_pipeline(const std::string& model_path, const model::Model& model, HeadOptions head,
                                        const plan::Plan& plan, const SegmentLoadOptions& load,
                                        const BalanceOptions& balance, std::optional<BalancePlanning> planning) {
  if (plan.devices.size() != head.workers.size()) {
    return Status::Errorf("the plan is for {} devices but there are {} workers", plan.devices.size(), head.workers.size());
  }
  Pipeline p;
  p.plan = plan;
  for (const plan::DeviceAssignment& d : plan.devices) p.segments.push_back(d.units);
  LL_ASSIGN_OR_RETURN(p.head, Head::connect(std::move(head)));
  p.head->set_balancing(balance, std::move(planning));
  LL_RETURN_IF_ERROR(p.head->load(model_path, model, p.segments, load));
  return p;
}

namespace {

Result<Pipeline> start_on_workers(const std::string& model_path, const model::Model& model, PipelineOptions options) {
  if (!options.cuts.empty()) {
    const graph::Graph graph = graph::build_graph(model);
    Pipeline p;
    LL_ASSIGN_OR_RETURN(p.segments, plan_segments(graph, options.head.workers.size(), options.cuts));
    LL_ASSIGN_OR_RETURN(p.head, Head::connect(std::move(options.head)));
    p.head->set_balancing(options.balance, std::nullopt);
    LL_RETURN_IF_ERROR(p.head->load(model_path, model, p.segments, options.load));
    return p;
  }
  LL_ASSIGN_OR_RETURN(profile::ClusterProfile profile,
                      profile_workers(model_path, options.head, options.planning, options.load.n_ctx,
                                      options.load.kv_types, options.progress));
  LL_ASSIGN_OR_RETURN(plan::Plan plan,
                      plan_pipeline(model, profile, options.planning, options.load.n_ctx, options.load.kv_types));
  if (options.progress) options.progress(plan::format_plan(plan));
  LL_ASSIGN_OR_RETURN(BalancePlanning planning,
                      balance_planning(model, profile, options.planning, options.load.n_ctx, options.load.kv_types));
  return start_planned_pipeline(model_path, model, std::move(options.head), plan, options.load, options.balance,
                                std::move(planning));
}

}  // namespace

Result<Pipeline> start_pipeline(const std::string& model_path, const model::Model& model, PipelineOptions options) {
  std::unique_ptr<InProcessWorker> own;
  if (!options.head_listen.empty()) {
    auto w = InProcessWorker::start(options.head_listen, options.head.keys, options.head.insecure, options.head_threads,
                                    options.head_no_mmap, {model_directory(model_path)});
    if (!w.ok()) return Status::Errorf("--head-listen {}: {}", options.head_listen, w.error());
    own = std::move(w).value();
    options.head.workers.insert(options.head.workers.begin(), own->address());
    options.planning.pin_first = true;
  }
  LL_ASSIGN_OR_RETURN(Pipeline p, start_on_workers(model_path, model, std::move(options)));
  p.own_worker = std::move(own);
  return p;
}

}  // namespace ll::cluster
