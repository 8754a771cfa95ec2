// `lingualinked serve`: the OpenAI-compatible HTTP API, on this device (-m alone), on a cluster of
// workers (--workers) or on worker processes it starts on this machine (--devices, as `demo`),
// with the web page, /metrics and /v1/status fed by a StatusBoard.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/cluster_run.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/progress_display.h"
#include "cluster/model_access.h"
#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "emulate/local_setup.h"
#include "server/cluster_engine.h"
#include "server/local_engine.h"
#include "server/metered_engine.h"
#include "server/openai_server.h"
#include "server/segment_memory.h"
#include "server/status_board.h"

namespace ll::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

struct ServeArgs {
  ModelOptions model;
  ClusterRunOptions cluster;
  std::string devices;
  std::string alias;
  int parallel = 4;
  server::ServerOptions server;
};

// The pipeline over the workers `local` started, set up as `demo` does.
cluster::PipelineOptions device_pipeline_options(const ServeArgs& a, const emulate::LocalCluster& local,
                                                 const model::HParams& hp) {
  cluster::PipelineOptions p;
  p.head.workers = local.addresses();
  p.head.keys = local.head_keys();
  p.cuts = a.cluster.cuts;
  p.planning = planning_options(a.cluster.planning, or_exit(plan::parse_planner(a.cluster.planning.planner)), a.parallel);
  p.progress = print_progress;
  p.load.progress = p.planning.profile.progress = progress_bars();
  const exec::ExecOptions exec = exec_options(a.model, hp);
  p.load.n_ctx = exec.n_ctx;
  p.load.kv_types = exec.kv_types;
  p.load.wire_type = wire_type(a.cluster.wire_type);
  p.balance = balance_options(a.cluster.balance);
  return p;
}

// Serves until SIGINT or SIGTERM; `board` shows what `engine` does.
void serve(server::Engine& engine, server::StatusBoard& board, const server::ChatPrompt& chat,
           server::ServerOptions options) {
  server::MeteredEngine metered(engine, board);
  options.status = &board;
  server::OpenAiServer http(metered, chat, options);
  const int port = or_exit(http.bind());
  std::fprintf(stderr, "chat template: %s\n", chat.description().c_str());
  std::fprintf(stderr, "serving %s on http://%s:%d (web page: /; OpenAI API: /v1/completions, /v1/chat/completions, "
               "/v1/models; /metrics; /v1/status)\n",
               options.model_id.c_str(), options.host.c_str(), port);
  std::thread stopper([&] {
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    board.close();  // ends the status streams, which would otherwise hold the server open
    http.stop();
  });
  http.serve();
  g_stop.store(true);
  stopper.join();
  std::fprintf(stderr, "stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API, with a web page (chat and "
                                             "a live view of the cluster) at /, /metrics and /v1/status");
  add_model_options(*cmd, a->model);
  add_cluster_run_options(*cmd, a->cluster);
  // The server's own --parallel (requests, not seeds of one prompt), and no run to draw a timeline of.
  cmd->remove_option(cmd->get_option("--parallel"));
  cmd->remove_option(cmd->get_option("--timeline"));
  cmd->add_option("--parallel", a->parallel,
                  "(or -np) requests generated at once, each a sequence in the pipeline (one process: 1); a request that "
                  "comes while fewer generate joins at once")
      ->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--queue", a->server.queue,
                  "requests that may wait while --parallel generate; past that a request gets HTTP 503 with "
                  "Retry-After")
      ->check(CLI::Range(0, 4096))->capture_default_str();
  cmd->add_option("--devices", a->devices,
                  "serve on this many worker processes started on this machine, or on devices described as "
                  "`demo --devices` takes them")
      ->excludes("--workers");
  cmd->add_option("--host", a->server.host, "address to listen on; other than loopback needs --api-key")
      ->capture_default_str();
  cmd->add_option("--port", a->server.port, "port to listen on (0: any free port)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--api-key", a->server.api_key, "clients must send 'Authorization: Bearer KEY' (the web page asks for it)");
  cmd->add_option("-a,--alias", a->alias, "the model's name in the API (default: the model file's name)");
  cmd->callback([a] {
    if (a->cluster.paired_cluster && !a->devices.empty()) fail("give --cluster or --devices, not both");
    resolve_paired_cluster(a->cluster);  // --cluster: the paired devices become --workers
    server::ServerOptions options = a->server;
    options.model_id = a->alias.empty() ? std::filesystem::path(a->model.path).stem().string() : a->alias;
    const Status usable = server::check_server_options(options);
    if (!usable.ok()) fail(usable.message());

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    a->model.whole_model = a->cluster.workers.empty() && a->devices.empty();
    auto model = load_model_or_exit(a->model.whole_model ? a->model : head_model_options(a->model));
    const server::ChatPrompt chat(*model);
    server::StatusBoard board(options.model_id, server::kSegmentMemoryNote);
    if (a->model.whole_model) {
      auto engine = or_exit(server::LocalEngine::create(*model, exec_options(a->model, model->hparams())));
      engine->report_to(board);
      return serve(*engine, board, chat, options);
    }

    std::unique_ptr<emulate::LocalCluster> local;
    cluster::PipelineOptions p;
    if (!a->devices.empty()) {
      emulate::LocalClusterOptions lo = or_exit(emulate::local_cluster_options(a->devices, a->model.threads, "serve"));
      lo.model_dirs = {cluster::model_directory(a->model.path)};
      lo.no_mmap = a->model.no_mmap;
      std::fprintf(stderr, "starting %zu workers on loopback (logs: %s)\n", lo.devices.size(), lo.log_path.c_str());
      const std::string log_path = lo.log_path;
      auto started = emulate::LocalCluster::start(std::move(lo));
      if (!started.ok()) fail(started.error() + " (see " + log_path + ")");
      local = std::move(started).value();
      p = device_pipeline_options(*a, *local, model->hparams());
    } else {
      p = pipeline_options(a->cluster, a->model, model->hparams(), a->parallel);
    }
    p.head.cancel = &g_stop;  // SIGINT/SIGTERM end the generations under way
    const int64_t n_ctx = p.load.n_ctx;
    const model::KvTypes kv_types = p.load.kv_types;
    auto pipeline = cluster::start_pipeline(a->model.path, *model, std::move(p));
    if (!pipeline.ok()) {
      if (local) local->stop();
      fail(pipeline.error());
    }
    pipeline->head->set_prompt_chunk(a->cluster.prompt_chunk);
    {
      auto tokenizer = text::Tokenizer::create(model->vocab());
      if (!tokenizer.ok()) fail(tokenizer.error());
      server::HeadStatusFeed feed(board, *pipeline->head, *model, n_ctx, kv_types);
      server::ClusterEngine engine(*pipeline->head, std::make_unique<text::Tokenizer>(std::move(tokenizer).value()),
                                   n_ctx, static_cast<size_t>(a->parallel));
      engine.report_to(feed);
      serve(engine, board, chat, options);
    }
    pipeline = Status::Error("stopped");  // close the links before the workers go away
    if (local) local->stop();
  });
}

}  // namespace ll::cli
