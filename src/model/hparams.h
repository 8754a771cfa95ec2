#pragma once
// Hyper-parameters of a model, read from GGUF metadata ("<arch>.*" keys, see model/arch.h).
#include <cstdint>
#include <string>

#include "core/status.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

namespace ll::model {

struct HParams {
  std::string arch;          // general.architecture
  std::string name;          // general.name (may be empty)
  int64_t n_vocab = 0;
  int64_t n_embd = 0;        // hidden size
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;          // FFN hidden size
  int64_t head_dim = 0;      // n_embd / n_head unless the file says otherwise
  int64_t n_rot = 0;         // rotated dimensions per head
  int64_t n_ctx_train = 0;
  float norm_eps = 1e-5f;    // epsilon of every RMSNorm or LayerNorm
  int64_t n_swa = 0;         // sliding attention window in positions (0: none), on the layers the arch says
  float attn_softcap = 0.0f;   // attention scores become c * tanh(s / c) (0: none; Gemma 2)
  float final_softcap = 0.0f;  // the same for the output logits
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
};

// The bounds read_hparams puts on a file's values (far above any real model).
inline constexpr int64_t kMaxDim = 1 << 20;            // embedding and FFN sizes
inline constexpr int64_t kMaxLayers = 4096;
inline constexpr int64_t kMaxHeads = 4096;
inline constexpr int64_t kMaxHeadDim = 4096;
inline constexpr int64_t kMaxContextLength = 1 << 24;  // also the largest context a user may ask for
inline constexpr int64_t kMaxVocab = 1 << 24;

// Every value is checked: an out-of-range one is an error naming its key and value.
Result<HParams> read_hparams(const gguf::GgufFile& file);
// Writes the "<arch>.*" keys read_hparams reads back (general.* and the tokenizer are the
// caller's), in the order llama.cpp's converters write them.
void write_hparams(const HParams& hp, gguf::GgufWriter& w);

// Positions per sequence when none are given: the training context, at most this many.
inline constexpr int64_t kMaxDefaultContext = 4096;
int64_t default_context(const HParams& hp);
// `requested` positions, or default_context(hp) when it is 0 (not given).
inline int64_t context_or_default(const HParams& hp, int64_t requested) {
  return requested > 0 ? requested : default_context(hp);
}

}  // namespace ll::model
