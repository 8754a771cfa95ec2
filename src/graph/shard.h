#pragma once
// Shards: one self-contained GGUF per segment, holding only that segment's tensors plus the
// metadata needed to run it (architecture, unit range, and the tokenizer for the first and
// last segment). A shard loads and runs exactly like the same segment of the full file.
#include <string>
#include <vector>

#include "core/status.h"
#include "graph/graph.h"
#include "graph/partition.h"
#include "model/model.h"

namespace ll::graph {

// "<stem>.seg<s + 1>of<n>.gguf": the file of segment s (from 0) of n, numbered from 1 as
// Partition::describe numbers the segments.
std::string shard_file_name(const std::string& stem, int segment, int n_segments);

// Writes the shard of units `r` to `path` (with the tokenizer when it holds the embedding or the head).
Status write_shard(const model::Model& model, const Graph& graph, model::UnitRange r, const std::string& path);

// Writes DIR/shard_file_name(stem of the model file, s, n) for every segment s; returns the
// paths in segment order.
Result<std::vector<std::string>> write_shards(const model::Model& model, const Graph& graph,
                                              const Partition& partition, const std::string& dir);

}  // namespace ll::graph
