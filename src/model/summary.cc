#include "model/summary.h"

namespace ll::model {

ModelSummary summarize(const Model& model) {
  ModelSummary s;
  for (const auto& t : model.file().tensors()) {
    TensorTypeTotals& totals = s.by_type[std::string(dtype_name(t.type))];
    totals.tensors++;
    totals.bytes += t.nbytes;
    s.n_params += t.n_elements;
  }
  return s;
}

}  // namespace ll::model
