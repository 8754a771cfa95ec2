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

// Writes DIR/<stem>.seg<i>of<n>.gguf for every segment; returns the paths.
Result<std::vector<std::string>> write_shards(const model::Model& model, const Graph& graph,
                                              const Partition& partition, const std::string& dir);

}  // namespace ll::graph
