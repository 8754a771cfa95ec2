#include "cluster/pipeline.h"

#include <fmt/format.h>

#include "graph/partition.h"

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

Result<Pipeline> start_pipeline(const std::string& model_path, const model::Model& model, PipelineOptions options) {
  const graph::Graph graph = graph::build_graph(model);
  Pipeline p;
  LL_ASSIGN_OR_RETURN(p.segments, plan_segments(graph, options.head.workers.size(), options.cuts));
  LL_ASSIGN_OR_RETURN(p.head, Head::connect(std::move(options.head)));
  LL_RETURN_IF_ERROR(p.head->load(model_path, model, p.segments, options.load));
  return p;
}

}  // namespace ll::cluster
