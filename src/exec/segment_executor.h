#pragma once
// Runs a contiguous range of units of a model on this device and owns the KV cache of its
// attention units, one slot per sequence. Only the weights of its own units are read, so a
// device holding a quarter of the layers pages in only a quarter of the mapped file.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "exec/joined_weights.h"
#include "exec/kv_cache.h"
#include "kernels/attention.h"
#include "model/model.h"
#include "model/units.h"

namespace ll::exec {

struct ExecOptions {
  int64_t n_ctx = 2048;  // positions per sequence
  int n_threads = 1;
  model::KvTypes kv_types = {};  // element types of the KV cache
};

using SeqId = uint64_t;

// `model` must outlive the executor: it reads the model's hyper-parameters and weights (which
// point into the model's mapped file) in place. Not thread-safe: one thread at a time calls
// it; forward() runs on the executor's own thread pool, with the calling thread as thread 0.
class SegmentExecutor {
 public:
  SegmentExecutor(const model::Model& model, model::UnitRange range, ExecOptions options);

  const model::UnitRange& range() const { return range_; }
  bool has_embed() const { return range_.contains(0); }
  bool has_head() const { return range_.contains(model::unit_count(model_.hparams()) - 1); }
  int64_t n_ctx() const { return options_.n_ctx; }
  model::KvTypes kv_types() const { return options_.kv_types; }
  int64_t n_embd() const { return hp_.n_embd; }
  int64_t n_vocab() const { return hp_.n_vocab; }
  ThreadPool& pool() { return pool_; }

  Status create_sequence(SeqId seq);
  void free_sequence(SeqId seq);
  bool has_sequence(SeqId seq) const { return seqs_.count(seq) != 0; }
  int64_t sequence_length(SeqId seq) const;  // positions already in the KV cache
  std::vector<SeqId> sequences() const;

  // Moving a sequence's state between executors (a boundary moved while it generates).
  // `unit` is the global index of an attention unit in range(); its state is K rows [0, length)
  // then V rows, kv_dim values each in the cache's types (kv_state_bytes). Continuing after
  // export -> import into an executor with the same cache types is bit-identical.
  Result<std::vector<uint8_t>> export_kv(SeqId seq, int64_t unit) const;
  // Bytes of one attention unit's state for `length` positions.
  uint64_t kv_state_bytes(int64_t length) const;
  // Creates the sequence with `length` positions if it does not exist; every unit imported
  // into one sequence must agree on its length.
  Status import_kv(SeqId seq, int64_t unit, int64_t length, std::span<const uint8_t> kv);
  // A sequence of `length` positions whose units' state comes later (import_kv, adopt) or is
  // not needed (a range without attention units); Ok when it exists with that length already.
  Status ensure_sequence(SeqId seq, int64_t length);
  // Takes over every sequence of `from` (an executor of the same model with another range):
  // each is created here with its length (or must have that length already, from import_kv),
  // and the KV of the attention units both ranges hold is copied; units only `from` holds are
  // dropped. `from` is left unchanged. Both must have the same cache types.
  Status adopt(const SegmentExecutor& from);

  // Runs the segment for n tokens at positions [pos, pos + n) of `seq`; pos may not exceed
  // the sequence's length (rewinding drops later positions).
  //   tokens: the n token ids, used when the segment holds the embedding.
  //   hidden: n x n_embd; input when the segment has no embedding, and the residual stream
  //           after the segment's last non-head unit on return.
  //   logits: when the segment holds the head, n_vocab floats for the last token, or
  //           n x n_vocab when all_logits.
  Status forward(SeqId seq, int64_t pos, std::span<const int32_t> tokens, float* hidden, int64_t n,
                 float* logits, bool all_logits = false);

 private:
  struct Sequence {
    std::unique_ptr<KvCache> kv;
    int64_t length = 0;
  };
  void embed(std::span<const int32_t> tokens, float* hidden);
  void attention(int64_t layer, KvCache& kv, int64_t slot, int64_t pos, float* hidden, int64_t n);
  void attend(int64_t layer, KvCache& kv, int64_t slot, int64_t pos, int64_t n);
  // Q into q_, K and V into k_ and v_, biases added: from one fused projection or three.
  void project_qkv(int64_t layer, int64_t n);
  void ffn(int64_t layer, float* hidden, int64_t n);
  void head(const float* hidden, int64_t n, float* logits, bool all_logits);
  // y = W x (+ bias when the bias is present), for n token rows.
  void matmul(const model::WeightRef& w, const float* x, int64_t n, float* y,
              const model::WeightRef& bias = model::WeightRef{});
  // out = the architecture's norm of `rows` rows of x with `weight` (and `bias`, LayerNorm).
  void norm_rows(std::vector<float>& out, const float* x, int64_t rows, const model::WeightRef& weight,
                 const model::WeightRef& bias = model::WeightRef{});
  void rope(float* x, int64_t n_heads, int64_t pos, int64_t n);
  int64_t first_attention_layer() const;
  // The KV slot of a global unit index, or an error when it is not an attention unit in range.
  Result<int64_t> kv_slot(int64_t unit) const;

  const model::Model& model_;
  const model::HParams& hp_;
  model::UnitRange range_;
  ExecOptions options_;
  ThreadPool pool_;
  int64_t n_attn_units_ = 0;
  const model::ArchSpec& arch_;
  std::vector<double> inv_freq_;  // RoPE frequency of each rotated pair
  std::vector<float> alibi_slopes_;  // per head, when the architecture uses ALiBi
  std::vector<JoinedLayer> joined_;  // per layer of the model
  std::map<SeqId, Sequence> seqs_;
  // Scratch, grown to the largest batch seen.
  std::vector<float> xn_, q_, k_, v_, qkv_, att_, out_, gate_, up_, gate_up_;
  std::vector<float> attention_state_;  // the chunks' softmax states of a few tokens' attention
  std::vector<kernels::AttentionPart> attention_parts_;
};

}  // namespace ll::exec
