#pragma once
// A partition of the unit graph into segments (contiguous unit ranges) and its
// data-dependency map: every tensor that crosses a cut, who produces it and every segment
// that consumes it. A tensor needed by a non-adjacent segment goes straight to it.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "model/units.h"

namespace ll::graph {

struct Dependency {
  std::string tensor;
  int producer_segment;  // -1: a graph input, supplied by whoever drives the pipeline
  std::vector<int> consumer_segments;
  uint64_t bytes_per_token;
};

struct Partition {
  std::vector<model::UnitRange> segments;
  std::vector<Dependency> dependencies;

  int segment_of(int64_t unit) const;
  // Tensors segment s must receive / send, in dependency-map order.
  std::vector<const Dependency*> inputs_of(int s) const;
  std::vector<const Dependency*> outputs_of(int s) const;
  // One line per segment and per dependency; segments are numbered from 1 there. Given one
  // file per segment (its shard), each segment's line names its file.
  std::string describe(const Graph& g, const std::vector<std::string>& segment_files = {}) const;
};

// cuts: the first unit of every segment but the first, strictly increasing, inside (0, units).
Result<Partition> partition_from_cuts(const Graph& graph, const std::vector<int64_t>& cuts);
// "4,9" or "attn[2],ffn[5]" -> unit indices.
Result<std::vector<int64_t>> parse_cuts(const Graph& graph, const std::string& text);
// Cuts that give `n_segments` segments with layers spread evenly (embedding with the first
// layers, head with the last).
std::vector<int64_t> even_layer_cuts(const Graph& graph, int n_segments);
// Cut at `cuts_text` (as for parse_cuts) when given, else into `n_segments` even by layers;
// neither is an error.
Result<Partition> partition_from_cuts_or_count(const Graph& graph, const std::string& cuts_text, int n_segments);

}  // namespace ll::graph
