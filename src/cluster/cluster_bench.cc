#include "cluster/cluster_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "cluster/throughput.h"

namespace ll::cluster {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Result<BenchRound> bench_round(Head& head, const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen, int k) {
  const std::vector<Request> rq = bench_requests(tokens, n_prompt, n_gen, static_cast<size_t>(k));
  BenchRound r;
  r.sequences = k;
  r.gens = head.generate(rq, [](size_t, const std::string&) {});
  double first = 0;
  for (const auto& g : r.gens) {
    if (!g.status.ok()) return g.status;
    first = std::max(first, g.prompt_seconds);
  }
  r.prompt_tps = k * n_prompt / first;
  auto steady = steady_generation_tps(r.gens);
  if (!steady.ok()) return Status::Errorf("{} (generate more tokens per sequence)", steady.error());
  r.gen_tps = steady.value();
  const GenerationTotals t = total_generations(r.gens, head.workers().size());
  r.latency_ms = t.decode_steps ? t.round_trip_us / 1000.0 / t.decode_steps : 0;
  r.wire_kib_per_token = t.decode_steps ? t.wire_bytes / 1024.0 / t.decode_steps : 0;
  return r;
}

// A warm-up, then for 1 and K sequences the best of `repetitions` rounds.
Status bench_pipeline(Pipeline& pipeline, PlacementBench& placement, const ClusterBenchOptions& o) {
  Head& head = *pipeline.head;
  placement.workers = head.workers();
  placement.segments = pipeline.segments;
  placement.plan = pipeline.plan;
  const std::string& label = placement.label;
  if (o.progress) o.progress(fmt::format("{}: {} workers: warm-up...", label, placement.workers.size()));
  auto warm_up = bench_round(head, o.tokens, std::min<int64_t>(o.n_prompt, 8), 2, 1);
  if (!warm_up.ok()) return warm_up.status();
  std::vector<int> ks = {1};
  if (o.parallel > 1) ks.push_back(o.parallel);
  for (int k : ks) {
    if (o.progress) o.progress(fmt::format("{}: {} sequence(s) x {} rounds...", label, k, o.repetitions));
    BenchRound best;
    for (int r = 0; r < o.repetitions; ++r) {
      if (o.baseline && k == 1) LL_RETURN_IF_ERROR(o.baseline->round());
      LL_ASSIGN_OR_RETURN(BenchRound round, bench_round(head, o.tokens, o.n_prompt, o.n_gen, k));
      if (round.gen_tps > best.gen_tps) best = std::move(round);
    }
    placement.rounds.push_back(std::move(best));
    if (o.on_round) o.on_round(placement, placement.rounds.back());
  }
  return Status::Ok();
}

}  // namespace

SingleProcessBench::SingleProcessBench(const model::Model& m, int threads, const std::vector<int32_t>& tokens,
                                       int64_t n_prompt, int64_t n_gen)
    : ex_(m, model::all_units(m.hparams()), {.n_ctx = n_prompt + n_gen + 1, .n_threads = threads}),
      tokens_(tokens),
      n_prompt_(n_prompt),
      n_gen_(n_gen),
      hidden_(static_cast<size_t>(n_prompt * ex_.n_embd())),
      logits_(static_cast<size_t>(ex_.n_vocab())) {}

Result<std::unique_ptr<SingleProcessBench>> SingleProcessBench::start(const model::Model& m, int threads,
                                                                      const std::vector<int32_t>& tokens,
                                                                      int64_t n_prompt, int64_t n_gen) {
  std::unique_ptr<SingleProcessBench> b(new SingleProcessBench(m, threads, tokens, n_prompt, n_gen));
  auto paging_in = b->run();  // not counted
  if (!paging_in.ok()) return paging_in.status();
  return b;
}

Status SingleProcessBench::round() {
  LL_ASSIGN_OR_RETURN(const BenchSpeed s, run());
  best_.prompt_tps = std::max(best_.prompt_tps, s.prompt_tps);
  best_.gen_tps = std::max(best_.gen_tps, s.gen_tps);
  return Status::Ok();
}

Result<BenchSpeed> SingleProcessBench::run() {
  ex_.free_sequence(0);
  if (!ex_.create_sequence(0).ok()) return Status::Error("cannot create a sequence");
  auto t0 = Clock::now();
  Status s = ex_.forward(0, 0, {tokens_.data(), static_cast<size_t>(n_prompt_)}, hidden_.data(), n_prompt_,
                         logits_.data());
  const double pp = seconds_since(t0);
  t0 = Clock::now();
  for (int64_t i = 0; i < n_gen_ && s.ok(); ++i) {
    s = ex_.forward(0, n_prompt_ + i, {&tokens_[n_prompt_ + i], 1}, hidden_.data(), 1, logits_.data());
  }
  const double tg = seconds_since(t0);
  LL_RETURN_IF_ERROR(s);
  return BenchSpeed{n_prompt_ / pp, n_gen_ / tg};
}

double predicted_tokens_per_second(const plan::Plan& plan, int sequences) {
  return std::min(sequences / plan.latency_seconds, 1 / plan.bottleneck_seconds);
}

std::vector<int32_t> bench_tokens(const model::Model& model, size_t count) {
  std::mt19937 rng(1234);
  std::vector<int32_t> tokens(count);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(model.hparams().n_vocab));
  return tokens;
}

Result<std::vector<PlacementBench>> run_cluster_bench(const model::Model& model, const ClusterBenchOptions& o) {
  std::vector<PlacementBench> results;
  if (!o.cuts.empty()) {
    PipelineOptions p;
    p.head = o.head;
    p.cuts = o.cuts;
    p.load = o.load;
    p.balance = o.balance;
    LL_ASSIGN_OR_RETURN(Pipeline pipeline, start_pipeline(o.model_path, model, std::move(p)));
    pipeline.head->set_prompt_chunk(o.prompt_chunk);
    results.push_back({.label = "cuts " + o.cuts});
    LL_RETURN_IF_ERROR(bench_pipeline(pipeline, results.back(), o));
    return results;
  }
  if (o.planners.empty()) return Status::Error("no planner to compare");
  auto profile = profile_workers(o.model_path, o.head, o.planners[0], o.load.n_ctx, o.load.kv_types, o.progress);
  if (!profile.ok()) return Status::Errorf("profiling the workers: {}", profile.error());
  for (const PlanningOptions& planning : o.planners) {
    if (o.cancel && o.cancel->load()) break;
    const std::string name = plan::planner_name(planning.planner);
    auto plan = plan_pipeline(model, profile.value(), planning, o.load.n_ctx, o.load.kv_types);
    if (!plan.ok()) return Status::Errorf("{}: {}", name, plan.error());
    auto planning_inputs = balance_planning(model, profile.value(), planning, o.load.n_ctx, o.load.kv_types);
    if (!planning_inputs.ok()) return Status::Errorf("{}: {}", name, planning_inputs.error());
    auto pipeline = start_planned_pipeline(o.model_path, model, o.head, plan.value(), o.load, o.balance,
                                           std::move(planning_inputs).value());
    if (!pipeline.ok()) return Status::Errorf("{}: {}", name, pipeline.error());
    pipeline->head->set_prompt_chunk(o.prompt_chunk);
    results.push_back({.label = name});
    LL_RETURN_IF_ERROR(bench_pipeline(pipeline.value(), results.back(), o));
  }
  return results;
}

std::vector<Request> bench_requests(const std::vector<int32_t>& tokens, int64_t n_prompt, int64_t n_gen, size_t k) {
  std::vector<Request> out(k);
  for (size_t i = 0; i < k; ++i) {
    const auto from = tokens.begin() + static_cast<int64_t>(i);
    out[i].prompt_tokens.assign(from, from + n_prompt);
    out[i].n_predict = n_gen;
    out[i].ignore_eos = true;
    out[i].sampling.temp = 0;
  }
  return out;
}

}  // namespace ll::cluster
