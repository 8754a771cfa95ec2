// `lingualinked demo`: a whole cluster on this machine. Starts workers as child processes on
// loopback with fresh keys (optionally each under its own CPU and memory caps), shows which
// device holds which layers, generates text and reports each device's time per token.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <mutex>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/progress_display.h"
#include "cluster/model_access.h"
#include "cluster/pipeline.h"
#include "core/device_presets.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"
#include "model/demo_model.h"

namespace ll::cli {
namespace fs = std::filesystem;
namespace {

std::atomic<bool> g_interrupted{false};

void on_signal(int) {
  g_interrupted.store(true);
  emulate::LocalCluster::kill_all_from_signal_handler();
}

// No -m: $LINGUALINKED_MODEL, a cached download, the shared stories260K, else stories15M
// downloaded (model/demo_model.h); failing all, says how to get a model.
std::string default_model() {
  auto found = model::find_or_fetch_demo_model({.progress = print_progress});
  if (!found.ok()) fail(found.error());
  return found.value();
}

}  // namespace

void add_demo_command(CLI::App& app) {
  struct Args {
    ModelOptions model;
    std::string devices = "3";
    std::string prompt = "Once upon a time";
    int64_t n_predict = 128;
    std::string cuts;
    std::string wire_type = "f32";
    PlanningArgs planning;
    BalanceArgs balance;
    SamplingOptions sampling;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("demo", "Run a model across worker processes on this machine (the quick start)");
  cmd->add_option("-m,--model", a->model.path,
                  "model file (default: $LINGUALINKED_MODEL, a cached stories15M, the shared stories260K, "
                  "else stories15M downloaded with curl)");
  cmd->add_option("--devices", a->devices,
                  "number of devices, presets such as \"phone-mid;phone-low;laptop\" (" + device_preset_names() +
                  ": a cpu share, mem and bw each, see docs/ENERGY.md; \"a:preset=pi4,mem=2G\" names one and overrides "
                  "its settings), or descriptions like "
                  "\"fast:cpu=1.0,mem=4G,bw=100mbit;slow:cpu=0.3,mem=1G,bw=20mbit,cores=0\" (settings: cpu share, mem "
                  "caps, bw link rates in kbit, mbit or gbit, the cores to run on, threads, host: a separate machine of "
                  "that name, in namespaces of its own; caps, rates and hosts need root); "
                  "speeds that change from the start of generation: cpu=0.5@0s/0.15@3s (shares from those times) and "
                  "busy=1@3s/0@20s (busy processes taking from the device's share); faults from the same start: "
                  "fail=kill@5s,restart@12s (killed, then started again with its key and address), "
                  "fail=stop@5s+3s (frozen for 3 s; without +3s for good), fail=drop@5s+3s (its link cut, in a "
                  "network namespace: needs root)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->model.threads, "threads per device (default: the cores shared out)")
      ->check(thread_range());
  cmd->add_option("-c,--ctx-size", a->model.n_ctx, "context length")->check(context_range());
  add_kv_type_options(*cmd, a->model.kv_types);
  add_no_mmap_option(*cmd, a->model);
  cmd->add_option("-p,--prompt", a->prompt, "prompt text")->capture_default_str();
  add_n_predict_option(*cmd, a->n_predict);
  cmd->add_option("--cuts", a->cuts, "first unit of every segment but the first; default: planned from the "
                                     "devices' measured profiles");
  add_wire_type_option(*cmd, a->wire_type);
  add_planning_options(*cmd, a->planning);
  add_balance_options(*cmd, a->balance);
  add_sampling_options(*cmd, a->sampling);
  cmd->callback([a] {
    if (a->model.path.empty()) a->model.path = default_model();
    const plan::Planner planner = or_exit(plan::parse_planner(a->planning.planner));
    emulate::LocalClusterOptions lo = or_exit(emulate::local_cluster_options(a->devices, a->model.threads, "demo"));
    lo.model_dirs = {cluster::model_directory(a->model.path)};
    lo.no_mmap = a->model.no_mmap;
    const std::string& log_path = lo.log_path;
    auto model = load_model_or_exit(head_model_options(a->model));
    const graph::Graph graph = graph::build_graph(*model, a->model.kv_types);

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    std::fprintf(stderr, "starting %zu workers on loopback (logs: %s)\n", lo.devices.size(), log_path.c_str());
    auto local = emulate::LocalCluster::start(lo);
    if (!local.ok()) fail(local.error() + " (see " + log_path + ")");
    emulate::LocalCluster& workers = *local.value();
    for (const std::string& note : workers.notes()) std::fprintf(stderr, "  %s\n", note.c_str());

    cluster::PipelineOptions p;
    p.head.workers = workers.addresses();
    p.head.keys = workers.head_keys();
    p.head.cancel = &g_interrupted;
    p.cuts = a->cuts;
    p.planning = planning_options(a->planning, planner, 1);
    p.progress = print_progress;
    p.load.progress = p.planning.profile.progress = progress_bars();
    const exec::ExecOptions exec = exec_options(a->model, model->hparams());
    p.load.n_ctx = exec.n_ctx;
    p.load.kv_types = exec.kv_types;
    p.load.wire_type = wire_type(a->wire_type);
    p.balance = balance_options(a->balance);
    auto pipeline = cluster::start_pipeline(a->model.path, *model, std::move(p));
    bool ok = pipeline.ok();
    if (!ok) {
      std::fprintf(stderr, "error: %s (see %s)\n", pipeline.error().c_str(), log_path.c_str());
    } else {
      const auto& segments = pipeline->segments;
      const size_t used = std::count_if(segments.begin(), segments.end(), [](const auto& s) { return !s.empty(); });
      std::fprintf(stderr, "%s: %lld layers across %zu of %zu devices, CURVE-encrypted links\n",
                   a->model.path.c_str(), static_cast<long long>(model->hparams().n_layer), used, lo.devices.size());
      if (used < lo.devices.size()) {
        std::fprintf(stderr, "  (the %s plan leaves %zu device(s) out: they would slow generation down; "
                             "--planner even spreads the layers over all of them)\n",
                     plan::planner_name(planner), lo.devices.size() - used);
      }
      for (size_t i = 0; i < segments.size(); ++i) {
        const auto& w = pipeline->head->workers()[i];
        std::fprintf(stderr, "  %-10s %-24s %-26s %u threads, %.0f MiB usable\n", w.name.c_str(),
                     w.address.endpoint.c_str(),
                     cluster::describe_units(graph, segments[i]).c_str(), w.threads, w.memory_limit / 1048576.0);
      }
      std::printf("%s", a->prompt.c_str());  // the generated text continues it
      std::fflush(stdout);
      // Speed changes are printed as they happen and drawn on the timeline.
      std::mutex marks_mutex;
      std::vector<cluster::RunTrace::Mark> marks;
      GenerationArgs args{a->prompt, a->n_predict, sampler_params(a->sampling), 1, a->balance.timeline, {}, {}, {}};
      args.on_start = [&] {
        const Status started = workers.start_schedules([&](const emulate::ScheduleChange& c) {
          std::fprintf(stderr, "\n[%.2f s] %s\n", c.seconds, c.label.c_str());
          std::lock_guard lock(marks_mutex);
          marks.push_back({c.seconds, c.label});
        });
        if (!started.ok()) std::fprintf(stderr, "error: %s\n", started.message().c_str());
      };
      args.marks = [&] {
        std::lock_guard lock(marks_mutex);
        return marks;
      };
      ok = generate_on_cluster(*pipeline->head, graph, args);
    }
    pipeline = Status::Error("stopped");  // close the links before the workers go away
    workers.stop();
    if (g_interrupted.load()) {
      std::fprintf(stderr, "interrupted: workers stopped\n");
      throw CLI::RuntimeError(130);
    }
    if (!ok) throw CLI::RuntimeError(1);
    std::error_code ec;
    fs::remove(log_path, ec);
  });
}

}  // namespace ll::cli
