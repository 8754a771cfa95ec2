#include "exec/segment_executor.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/quantize.h"

namespace ll::exec {

using model::Unit;
using model::UnitKind;

namespace {

const float* f32(const model::WeightRef& w) { return reinterpret_cast<const float*>(w.data); }

// ALiBi slopes with ggml's maximum bias of 8: a geometric series over the largest power of two
// of heads, the rest interleaved from a second series.
std::vector<float> alibi_slopes(int64_t n_head) {
  constexpr float kMaxBias = 8.0f;
  const auto n_pow2 = static_cast<int64_t>(std::exp2(std::floor(std::log2(static_cast<double>(n_head)))));
  const float m0 = std::exp2(-kMaxBias / static_cast<float>(n_pow2));
  const float m1 = std::exp2(-kMaxBias / 2.0f / static_cast<float>(n_pow2));
  std::vector<float> slopes;
  for (int64_t h = 0; h < n_head; ++h) {
    slopes.push_back(h < n_pow2 ? std::pow(m0, static_cast<float>(h + 1))
                                : std::pow(m1, static_cast<float>(2 * (h - n_pow2) + 1)));
  }
  return slopes;
}

}  // namespace

SegmentExecutor::SegmentExecutor(const model::Model& model, model::UnitRange range, ExecOptions options)
    : model_(model),
      hp_(model.hparams()),
      range_(range),
      options_(options),
      pool_(options.n_threads),
      arch_(model.arch()) {
  // The model must have bound the weights of every unit we run.
  LL_CHECK(range.begin >= model.units().begin && range.end <= model.units().end && range.begin < range.end);
  for (int64_t i = range_.begin; i < range_.end; ++i) {
    if (model::unit_at(hp_, i).kind == UnitKind::Attention) ++n_attn_units_;
  }
  // theta_i = pos * scale * base^(-2i / n_rot) / factor_i   (factors: llama3 rope_freqs)
  const auto& freqs = model_.weights().rope_freqs;
  for (int64_t i = 0; arch_.rope != model::RopeKind::None && i < hp_.n_rot / 2; ++i) {
    double f = 1.0 / std::pow(static_cast<double>(hp_.rope_freq_base), 2.0 * i / hp_.n_rot);
    if (freqs.present()) f /= reinterpret_cast<const float*>(freqs.data)[i];
    inv_freq_.push_back(f * hp_.rope_freq_scale);
  }
  if (arch_.alibi) alibi_slopes_ = alibi_slopes(hp_.n_head);
  for (const model::LayerWeights& w : model_.weights().layers) joined_.push_back(join_layer(w));
}

int64_t SegmentExecutor::first_attention_layer() const {
  for (int64_t i = range_.begin; i < range_.end; ++i) {
    Unit u = model::unit_at(hp_, i);
    if (u.kind == UnitKind::Attention) return u.layer;
  }
  return 0;
}

Status SegmentExecutor::create_sequence(SeqId seq) {
  if (seqs_.count(seq) != 0) return Status::Errorf("sequence {} already exists", seq);
  Sequence s;
  LL_ASSIGN_OR_RETURN(s.kv, KvCache::create(n_attn_units_, options_.n_ctx, hp_.kv_dim(), options_.kv_types));
  seqs_.emplace(seq, std::move(s));
  return Status::Ok();
}

void SegmentExecutor::free_sequence(SeqId seq) { seqs_.erase(seq); }

int64_t SegmentExecutor::sequence_length(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.length;
}

std::vector<SeqId> SegmentExecutor::sequences() const {
  std::vector<SeqId> ids;
  for (const auto& [id, s] : seqs_) ids.push_back(id);
  return ids;
}

Result<int64_t> SegmentExecutor::kv_slot(int64_t unit) const {
  if (!range_.contains(unit) || model::unit_at(hp_, unit).kind != UnitKind::Attention) {
    return Status::Errorf("unit {} is not an attention unit of this segment ({})", unit,
                          model::describe_units(hp_, range_));
  }
  return model::unit_at(hp_, unit).layer - first_attention_layer();
}

uint64_t SegmentExecutor::kv_state_bytes(int64_t length) const {
  return static_cast<uint64_t>(length) * model::kv_row_bytes(hp_, options_.kv_types);
}

Result<std::vector<uint8_t>> SegmentExecutor::export_kv(SeqId seq, int64_t unit) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return Status::Errorf("unknown sequence {}", seq);
  LL_ASSIGN_OR_RETURN(const int64_t slot, kv_slot(unit));
  const int64_t len = it->second.length;
  const KvCache& kv = *it->second.kv;
  std::vector<uint8_t> out(kv_state_bytes(len));
  kv.export_rows(slot, len, out.data());
  return out;
}

Status SegmentExecutor::ensure_sequence(SeqId seq, int64_t length) {
  if (length < 0 || length > options_.n_ctx) {
    return Status::Errorf("sequence {} of {} positions does not fit a context of {}", seq, length, options_.n_ctx);
  }
  if (auto it = seqs_.find(seq); it != seqs_.end()) {
    if (it->second.length == length) return Status::Ok();
    return Status::Errorf("sequence {} has {} positions here, not {}", seq, it->second.length, length);
  }
  LL_RETURN_IF_ERROR(create_sequence(seq));
  seqs_[seq].length = length;
  return Status::Ok();
}

Status SegmentExecutor::import_kv(SeqId seq, int64_t unit, int64_t length, std::span<const uint8_t> kv) {
  LL_ASSIGN_OR_RETURN(const int64_t slot, kv_slot(unit));
  if (length < 0 || kv.size() != kv_state_bytes(length)) {
    return Status::Errorf("KV of unit {} for {} positions in a {}/{} cache must be {} bytes, not {}", unit, length,
                          model::kv_type_name(options_.kv_types.k), model::kv_type_name(options_.kv_types.v),
                          kv_state_bytes(std::max<int64_t>(length, 0)), kv.size());
  }
  LL_RETURN_IF_ERROR(ensure_sequence(seq, length));
  seqs_[seq].kv->import_rows(slot, length, kv.data());
  return Status::Ok();
}

Status SegmentExecutor::adopt(const SegmentExecutor& from) {
  if (from.hp_.kv_dim() != hp_.kv_dim() || from.hp_.n_layer != hp_.n_layer) {
    return Status::Error("cannot adopt the sequences of an executor of another model");
  }
  if (!(from.options_.kv_types == options_.kv_types)) {
    return Status::Error("cannot adopt the sequences of an executor with other KV cache types");
  }
  for (const auto& [id, theirs] : from.seqs_) {
    LL_RETURN_IF_ERROR(ensure_sequence(id, theirs.length));
    const int64_t len = theirs.length;
    if (len == 0) continue;
    std::vector<uint8_t> rows(kv_state_bytes(len));
    for (int64_t u = std::max(range_.begin, from.range_.begin); u < std::min(range_.end, from.range_.end); ++u) {
      if (model::unit_at(hp_, u).kind != UnitKind::Attention) continue;
      theirs.kv->export_rows(from.kv_slot(u).value(), len, rows.data());
      seqs_[id].kv->import_rows(kv_slot(u).value(), len, rows.data());
    }
  }
  return Status::Ok();
}

Status SegmentExecutor::forward(SeqId seq, int64_t pos, std::span<const int32_t> tokens, float* hidden, int64_t n,
                                float* logits, bool all_logits) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return Status::Errorf("unknown sequence {}", seq);
  Sequence& s = it->second;
  if (n <= 0) return Status::Errorf("empty batch");
  if (pos < 0 || pos > s.length) {
    return Status::Errorf("position {} is past the end of sequence {} (length {})", pos, seq, s.length);
  }
  if (pos + n > options_.n_ctx) {
    return Status::Errorf("context full: {} positions requested, the context holds {}", pos + n, options_.n_ctx);
  }
  if (has_embed()) {
    if (static_cast<int64_t>(tokens.size()) != n) return Status::Errorf("expected {} tokens, got {}", n, tokens.size());
    for (int32_t t : tokens) {
      if (t < 0 || t >= hp_.n_vocab) return Status::Errorf("token id {} is outside the vocabulary (0..{})", t, hp_.n_vocab - 1);
    }
  }

  const int64_t first_layer = first_attention_layer();
  for (int64_t i = range_.begin; i < range_.end; ++i) {
    Unit u = model::unit_at(hp_, i);
    switch (u.kind) {
      case UnitKind::Embed: embed(tokens, hidden); break;
      case UnitKind::Attention:
        attention(u.layer, *s.kv, u.layer - first_layer, pos, hidden, n);
        break;
      case UnitKind::Ffn: ffn(u.layer, hidden, n); break;
      case UnitKind::Head: head(hidden, n, logits, all_logits); break;
    }
  }
  s.length = pos + n;
  if (has_head()) {
    // A NaN or inf logit (broken weights, a NaN from a bad file) would otherwise turn into
    // arbitrary tokens; it costs one pass over the vocabulary to refuse it.
    const int64_t n_logits = (all_logits ? n : 1) * hp_.n_vocab;
    for (int64_t i = 0; i < n_logits; ++i) {
      if (!std::isfinite(logits[i])) {
        return Status::Errorf("the model computed a non-finite logit ({}) at position {}; its weights or "
                              "hyper-parameters are damaged", logits[i], pos + (all_logits ? i / hp_.n_vocab : n - 1));
      }
    }
  }
  return Status::Ok();
}

void SegmentExecutor::matmul(const model::WeightRef& w, const float* x, int64_t n, float* y,
                             const model::WeightRef& bias) {
  kernels::matmul(w.type, w.data, w.rows, w.cols, x, n, y, &pool_, w.layout);
  if (!bias.present()) return;
  for (int64_t t = 0; t < n; ++t) kernels::add_inplace(y + t * w.rows, f32(bias), w.rows);
}

void SegmentExecutor::norm_rows(std::vector<float>& out, const float* x, int64_t rows, const model::WeightRef& weight,
                                const model::WeightRef& bias) {
  const int64_t e = hp_.n_embd;
  out.resize(rows * e);
  for (int64_t t = 0; t < rows; ++t) {
    if (arch_.norm == model::NormKind::Layer) {
      kernels::layernorm(&out[t * e], x + t * e, f32(weight), bias.present() ? f32(bias) : nullptr, e, hp_.norm_eps);
    } else {
      kernels::rmsnorm(&out[t * e], x + t * e, f32(weight), e, hp_.norm_eps);
    }
  }
}

void SegmentExecutor::embed(std::span<const int32_t> tokens, float* hidden) {
  const model::LlamaWeights& w = model_.weights();
  const int64_t e = hp_.n_embd, row = row_bytes(w.token_embd.type, w.token_embd.cols);
  const auto n = static_cast<int64_t>(tokens.size());
  for (int64_t i = 0; i < n; ++i) {
    kernels::dequantize_row(w.token_embd.type, w.token_embd.data + tokens[i] * row, hidden + i * e, e);
  }
  if (arch_.embed_scale) {
    const float scale = std::sqrt(static_cast<float>(e));
    for (int64_t i = 0; i < n * e; ++i) hidden[i] *= scale;
  }
  if (w.token_embd_norm.present()) {
    norm_rows(xn_, hidden, n, w.token_embd_norm, w.token_embd_norm_b);
    std::copy(xn_.begin(), xn_.begin() + n * e, hidden);
  }
}

// Rotates pairs of the first n_rot dimensions of every head: adjacent ones (x[2i], x[2i+1])
// for "norm" RoPE (Llama, as in llama2.c), halves (x[i], x[i + n_rot/2]) for NeoX's.
void SegmentExecutor::rope(float* x, int64_t n_heads, int64_t pos, int64_t n) {
  if (arch_.rope == model::RopeKind::None) return;
  const int64_t hd = hp_.head_dim;
  const bool neox = arch_.rope == model::RopeKind::Neox;
  const auto half = static_cast<int64_t>(inv_freq_.size());
  for (int64_t t = 0; t < n; ++t) {
    float* xt = x + t * n_heads * hd;
    for (int64_t i = 0; i < half; ++i) {
      const double theta = static_cast<double>(pos + t) * inv_freq_[i];
      const float c = static_cast<float>(std::cos(theta)), s = static_cast<float>(std::sin(theta));
      const int64_t first = neox ? i : 2 * i, second = neox ? i + half : 2 * i + 1;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* p = xt + h * hd;
        const float x0 = p[first], x1 = p[second];
        p[first] = x0 * c - x1 * s;
        p[second] = x0 * s + x1 * c;
      }
    }
  }
}

void SegmentExecutor::project_qkv(int64_t layer, int64_t n) {
  const model::LayerWeights& w = model_.weights().layers[layer];
  const model::WeightRef& wqkv = w.wqkv.present() ? w.wqkv : joined_[layer].qkv;
  const int64_t qd = hp_.q_dim(), kvd = hp_.kv_dim();
  q_.resize(n * qd);
  k_.resize(n * kvd);
  v_.resize(n * kvd);
  if (!wqkv.present()) {
    matmul(w.wq, xn_.data(), n, q_.data(), w.bq);
    matmul(w.wk, xn_.data(), n, k_.data(), w.bk);
    matmul(w.wv, xn_.data(), n, v_.data(), w.bv);
    return;
  }
  const int64_t row = qd + 2 * kvd;
  qkv_.resize(n * row);
  matmul(wqkv, xn_.data(), n, qkv_.data(), w.bqkv);
  for (int64_t t = 0; t < n; ++t) {
    const float* r = &qkv_[t * row];
    std::copy(r, r + qd, &q_[t * qd]);
    std::copy(r + qd, r + qd + kvd, &k_[t * kvd]);
    std::copy(r + qd + kvd, r + row, &v_[t * kvd]);
  }
}

void SegmentExecutor::attention(int64_t layer, KvCache& kv, int64_t slot, int64_t pos, float* hidden, int64_t n) {
  const model::LayerWeights& w = model_.weights().layers[layer];
  const int64_t e = hp_.n_embd;
  att_.resize(n * hp_.q_dim());
  out_.resize(n * e);
  norm_rows(xn_, hidden, n, w.attn_norm, w.attn_norm_b);
  project_qkv(layer, n);
  rope(q_.data(), hp_.n_head, pos, n);
  rope(k_.data(), hp_.n_head_kv, pos, n);
  kv.store_k(slot, pos, k_.data(), n);
  kv.store_v(slot, pos, v_.data(), n);
  attend(layer, kv, slot, pos, n);
  matmul(w.wo, att_.data(), n, out_.data(), w.bo);
  if (w.attn_post_norm.present()) {
    norm_rows(xn_, out_.data(), n, w.attn_post_norm);
    std::copy(xn_.begin(), xn_.begin() + n * e, out_.begin());
  }
  kernels::add_inplace(hidden, out_.data(), n * e);
}

// att_ = the causal attention of n tokens from position pos: token t sees positions 0..pos+t,
// or only the last n_swa of them on the layers the architecture windows. Every task reads the
// rows of all key/value heads (or of a share of them) together, in order. A prompt is shared out
// by tokens; a few tokens by chunks of their positions, whose states are merged afterwards, so
// that each thread streams its own part of the cache. Both give the same bits (kernels::attend).
void SegmentExecutor::attend(int64_t layer, KvCache& kv, int64_t slot, int64_t pos, int64_t n) {
  const bool windowed = hp_.n_swa > 0 && (arch_.sliding_window == model::SlidingWindowLayers::All ||
                                          (arch_.sliding_window == model::SlidingWindowLayers::Even && layer % 2 == 0));
  const int64_t qd = hp_.q_dim(), hd = hp_.head_dim, n_kv = hp_.n_head_kv, group = hp_.n_head / n_kv;
  const auto first_of = [&](int64_t t) { return windowed ? std::max<int64_t>(0, pos + t - hp_.n_swa + 1) : 0; };
  // Token t's query heads of the key/value heads [g0, g1), their keys and their values.
  const auto query_of = [&](int64_t t, int64_t g0, int64_t g1) {
    kernels::AttentionQuery q;
    q.q = &q_[t * qd + g0 * group * hd];
    q.n_q = group;
    q.n_kv = g1 - g0;
    q.head_dim = hd;
    q.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    q.softcap = hp_.attn_softcap;
    q.alibi = alibi_slopes_.empty() ? nullptr : &alibi_slopes_[g0 * group];
    q.query = pos + t;
    return q;
  };
  const kernels::KvRows keys = kv.keys(slot, hd), values = kv.values(slot, hd);
  const auto from_head = [](kernels::KvRows rows, int64_t g0) {
    rows.data += g0 * rows.head_stride;
    return rows;
  };
  const auto keys_of = [&](int64_t g0) { return from_head(keys, g0); };
  const auto values_of = [&](int64_t g0) { return from_head(values, g0); };
  const int threads = pool_.size();
  if (n >= 4 * threads) {
    pool_.run([&](int ith, int nth) {
      for (int64_t t = n * ith / nth; t < n * (ith + 1) / nth; ++t) {
        const int64_t first = first_of(t);
        kernels::attend(query_of(t, 0, n_kv), keys_of(0), values_of(0), first, pos + t + 1 - first, &att_[t * qd]);
      }
    });
    return;
  }
  // Parts [part_start[t], part_start[t + 1]) are token t's chunks; each task is one chunk of one
  // token for a share of the key/value heads (shares only where there are fewer chunks than
  // threads to keep busy).
  std::vector<int64_t> part_start(n + 1, 0), chunk(n);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t len = pos + t + 1 - first_of(t);
    chunk[t] = kernels::attention_chunk(len);
    part_start[t + 1] = part_start[t] + (len + chunk[t] - 1) / chunk[t];
  }
  const int64_t parts = part_start[n], heads = hp_.n_head, state = heads * (hd + 2);
  const int64_t shares = std::clamp<int64_t>((2 * threads + parts - 1) / parts, 1, n_kv);
  attention_state_.resize(parts * state);
  attention_parts_.resize(parts);
  for (int64_t p = 0; p < parts; ++p) {
    float* base = &attention_state_[p * state];
    attention_parts_[p] = {base, base + heads, base + 2 * heads};
  }
  pool_.run([&](int ith, int nth) {
    const int64_t tasks = parts * shares;
    for (int64_t task = tasks * ith / nth; task < tasks * (ith + 1) / nth; ++task) {
      const int64_t p = task / shares, share = task % shares;
      const int64_t t = std::upper_bound(part_start.begin(), part_start.end(), p) - part_start.begin() - 1;
      const int64_t g0 = n_kv * share / shares, g1 = n_kv * (share + 1) / shares, h0 = g0 * group;
      const int64_t begin = first_of(t) + (p - part_start[t]) * chunk[t];
      const int64_t len = std::min(chunk[t], pos + t + 1 - begin);
      const kernels::AttentionPart& whole = attention_parts_[p];
      kernels::attend_part(query_of(t, g0, g1), keys_of(g0), values_of(g0), begin, len,
                           {whole.max + h0, whole.sum + h0, whole.out + h0 * hd});
    }
  });
  for (int64_t t = 0; t < n; ++t) {
    kernels::merge_attention_parts(&attention_parts_[part_start[t]], part_start[t + 1] - part_start[t], heads, hd,
                                   &att_[t * qd]);
  }
}

void SegmentExecutor::ffn(int64_t layer, float* hidden, int64_t n) {
  const model::LayerWeights& w = model_.weights().layers[layer];
  const model::WeightRef& gate_up = w.ffn_gate_up.present() ? w.ffn_gate_up : joined_[layer].gate_up;
  const int64_t e = hp_.n_embd, ff = hp_.n_ff;
  gate_.resize(n * ff);
  up_.resize(n * ff);
  out_.resize(n * e);
  norm_rows(xn_, hidden, n, w.ffn_norm, w.ffn_norm_b);
  if (gate_up.present()) {
    gate_up_.resize(n * 2 * ff);
    matmul(gate_up, xn_.data(), n, gate_up_.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* r = &gate_up_[t * 2 * ff];
      std::copy(r, r + ff, &gate_[t * ff]);
      std::copy(r + ff, r + 2 * ff, &up_[t * ff]);
    }
  } else if (w.ffn_gate.present()) {
    matmul(w.ffn_gate, xn_.data(), n, gate_.data());
    matmul(w.ffn_up, xn_.data(), n, up_.data(), w.ffn_up_b);
  } else {
    matmul(w.ffn_up, xn_.data(), n, gate_.data(), w.ffn_up_b);  // the activation runs on gate_
  }
  // The activation takes an exponential or a table lookup per element, a few microseconds per
  // token that the other threads would otherwise spend waiting, so it is shared out too.
  pool_.parallel_for(n * ff, [&](int64_t i0, int64_t i1) {
    switch (arch_.ffn) {
      case model::FfnKind::SiluGated: kernels::silu_mul(&gate_[i0], &up_[i0], i1 - i0); break;
      case model::FfnKind::GeluGated: kernels::gelu_mul(&gate_[i0], &up_[i0], i1 - i0); break;
      case model::FfnKind::Gelu: kernels::gelu(&gate_[i0], i1 - i0); break;
    }
  });
  matmul(w.ffn_down, gate_.data(), n, out_.data(), w.ffn_down_b);
  if (w.ffn_post_norm.present()) {
    norm_rows(xn_, out_.data(), n, w.ffn_post_norm);
    std::copy(xn_.begin(), xn_.begin() + n * e, out_.begin());
  }
  kernels::add_inplace(hidden, out_.data(), n * e);
}

void SegmentExecutor::head(const float* hidden, int64_t n, float* logits, bool all_logits) {
  const model::LlamaWeights& w = model_.weights();
  const int64_t e = hp_.n_embd;
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  norm_rows(xn_, hidden + first * e, rows, w.output_norm, w.output_norm_b);
  matmul(w.output, xn_.data(), rows, logits);
  if (hp_.final_softcap > 0.0f) kernels::softcap(logits, rows * hp_.n_vocab, hp_.final_softcap);
}

}  // namespace ll::exec
