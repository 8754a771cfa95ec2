#pragma once
// What a model file holds, counted: tensors and bytes per type, and parameters.
#include <cstdint>
#include <map>
#include <string>

#include "model/model.h"

namespace ll::model {

struct TensorTypeTotals {
  int tensors = 0;
  uint64_t bytes = 0;
};

struct ModelSummary {
  std::map<std::string, TensorTypeTotals> by_type;  // by type name (e.g. "F32", "Q8_0"), in name order
  int64_t n_params = 0;                             // elements of every tensor in the file
};

// Counts the tensors of the model's file (only a shard's own when the file is a shard).
ModelSummary summarize(const Model& model);

}  // namespace ll::model
