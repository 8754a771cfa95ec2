#pragma once
// Random-weight models of real shapes (TinyLlama-1.1B, Llama-3.2-1B, ...) with a real
// vocabulary, so speed and memory can be measured at realistic sizes without a download.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace ll::model {

// The shape of a published model (its config.json), for the architecture's table to fill.
struct SynthPreset {
  std::string name;
  std::string arch = "llama";  // general.architecture, a table of model/arch.h
  int64_t n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ctx = 0;
  int64_t head_dim = 0;  // 0: n_embd / n_head
  float rope_freq_base = 10000.0f;
  float norm_eps = 1e-5f;
  int64_t sliding_window = 0;  // 0: the architecture's default
  bool tied_output = false;    // output head shares the embedding
  bool llama3_rope = false;    // rope_freqs.weight frequency factors
};

const std::vector<SynthPreset>& synth_presets();

struct SynthOptions {
  std::string preset;      // a name from synth_presets()
  std::string type = "q4_0";  // a computable type (q4_0, q5_k, ...) or a mix: q3_k_m, q4_k_m, q5_k_m (as llama.cpp)
  std::string vocab_path;  // GGUF whose tokenizer.ggml.* metadata is copied
  uint64_t seed = 1;
  int64_t n_layer_override = 0;  // > 0: fewer or more layers than the preset
};

// Writes the model to `output`; `progress` receives (tensors done, tensors total).
Status write_synthetic_model(const SynthOptions& options, const std::string& output, ThreadPool& pool,
                             const std::function<void(size_t, size_t)>& progress = {});

}  // namespace ll::model
