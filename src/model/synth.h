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

struct SynthPreset {
  std::string name;
  int64_t n_vocab, n_embd, n_ff, n_layer, n_head, n_head_kv, n_ctx;
  float rope_freq_base;
  bool tied_output;       // output head shares the embedding
  bool llama3_rope;       // rope_freqs.weight frequency factors
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
