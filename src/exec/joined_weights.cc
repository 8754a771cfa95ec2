#include "exec/joined_weights.h"

#include "core/dtype.h"

namespace ll::exec {

model::WeightRef joined_rows(std::initializer_list<const model::WeightRef*> parts) {
  const model::WeightRef& first = **parts.begin();
  model::WeightRef joined = first;
  joined.tensor = nullptr;
  joined.rows = 0;
  for (const model::WeightRef* part : parts) {
    const bool packed = part->layout == kernels::WeightLayout::kRowLanes;
    const bool last = part == *(parts.end() - 1);
    // Packed weights (kernels::pack_row_lanes) keep a matrix's last rows % kRowLaneRows rows as
    // in the file, so such a matrix can only end a joined one, where the kernels expect that tail.
    if (!part->present() || part->type != first.type || part->cols != first.cols || part->layout != first.layout ||
        part->data != first.data + joined.rows * row_bytes(first.type, first.cols) ||
        (packed && !last && part->rows % kernels::kRowLaneRows != 0)) {
      return {};
    }
    joined.rows += part->rows;
  }
  return joined;
}

JoinedLayer join_layer(const model::LayerWeights& w) {
  JoinedLayer j;
  if (!w.wqkv.present() && !w.bq.present() && !w.bk.present() && !w.bv.present()) {
    j.qkv = joined_rows({&w.wq, &w.wk, &w.wv});
  }
  if (!w.ffn_gate_up.present() && !w.ffn_up_b.present()) j.gate_up = joined_rows({&w.ffn_gate, &w.ffn_up});
  return j;
}

}  // namespace ll::exec
