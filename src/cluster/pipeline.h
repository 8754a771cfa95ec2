#pragma once
// Setting up a pipeline: cut the model into one segment per worker (evenly by layers unless
// cuts are given), connect the head and load the segments.
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "cluster/head.h"
#include "core/status.h"
#include "graph/graph.h"
#include "model/model.h"

namespace ll::cluster {

// `cuts` as for graph::parse_cuts ("4,9" or "attn[2],ffn[5]"); empty: even by layers.
Result<std::vector<model::UnitRange>> plan_segments(const graph::Graph& graph, size_t n_workers,
                                                    const std::string& cuts);
// "embed attn[0] .. ffn[3]" style summary of a unit range.
std::string describe_units(const graph::Graph& graph, model::UnitRange range);

struct PipelineOptions {
  HeadOptions head;
  std::string cuts;
  SegmentLoadOptions load;
};

struct Pipeline {
  std::unique_ptr<Head> head;
  std::vector<model::UnitRange> segments;  // segments[i] runs on worker i
};

Result<Pipeline> start_pipeline(const std::string& model_path, const model::Model& model, PipelineOptions options);

}  // namespace ll::cluster
