// `lingualinked graph` prints the units and their costs; `lingualinked split` writes shards.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "graph/graph.h"
#include "graph/graph_json.h"
#include "graph/partition.h"
#include "graph/shard.h"

namespace ll::cli {

void add_graph_commands(CLI::App& app) {
  struct GraphArgs {
    ModelOptions model;
    bool json = false;
  };
  auto a = std::make_shared<GraphArgs>();
  CLI::App* cmd = app.add_subcommand("graph", "Print the model's units with their weights, FLOPs and KV-cache bytes");
  cmd->add_option("model", a->model.path, "model file")->required();
  cmd->add_option("-c,--ctx-size", a->model.n_ctx, "context length for the decode FLOPs (default 512)")
      ->check(context_range());
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a] {
    auto m = load_model_or_exit(a->model);
    const graph::Graph g = graph::build_graph(*m);
    const int64_t n_ctx = a->model.n_ctx > 0 ? a->model.n_ctx : 512;
    if (a->json) {
      std::printf("%s\n", graph::to_json(g, n_ctx).dump(1).c_str());
      return;
    }
    std::printf("%-5s %-10s %12s %10s %14s %14s %10s  %s\n", "#", "unit", "weights", "types", "MFLOP/token",
                "MFLOP/pp64", "KV B/tok", "inputs -> outputs");
    for (size_t i = 0; i < g.units.size(); ++i) {
      const auto& u = g.units[i];
      std::string types;
      for (const auto& w : u.weights) {
        std::string t(dtype_name(w.type));
        if (types.find(t) == std::string::npos) types += (types.empty() ? "" : "+") + t;
      }
      std::printf("%-5zu %-10s %9.2f MiB %10s %14.3f %14.3f %10llu  %s -> %s\n", i, u.name.c_str(),
                  u.weight_bytes / 1048576.0, types.c_str(), u.decode_flops(n_ctx) / 1e6, u.prompt_flops(64, 0) / 1e6,
                  static_cast<unsigned long long>(u.kv_bytes_per_token), fmt::format("{}", fmt::join(u.inputs, ",")).c_str(),
                  fmt::format("{}", fmt::join(u.outputs, ",")).c_str());
    }
    std::printf("(decode FLOPs at a context of %lld positions)\n", static_cast<long long>(n_ctx));
  });

  struct SplitArgs {
    ModelOptions model;
    std::string cuts;
    int segments = 0;
    std::string output;
  };
  auto s = std::make_shared<SplitArgs>();
  CLI::App* split = app.add_subcommand("split", "Write one self-contained GGUF shard per segment");
  split->add_option("model", s->model.path, "model file")->required();
  split->add_option("--cuts", s->cuts, "first unit of each segment after the first: indices or names, e.g. 5,attn[4]");
  split->add_option("--segments", s->segments, "split the layers evenly into N segments");
  split->add_option("-o,--output", s->output, "output directory")->required();
  split->callback([s] {
    auto m = load_model_or_exit(s->model);
    const graph::Graph g = graph::build_graph(*m);
    auto p = graph::partition_from_cuts_or_count(g, s->cuts, s->segments);
    if (!p.ok()) fail(p.error());
    auto paths = graph::write_shards(*m, g, p.value(), s->output);
    if (!paths.ok()) fail(paths.error());
    std::printf("%s", p->describe(g, paths.value()).c_str());
  });
}

}  // namespace ll::cli
