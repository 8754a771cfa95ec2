#include "model/synth.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <functional>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "kernels/quantize.h"
#include "model/arch.h"

namespace ll::model {
namespace {

constexpr float kWeightStd = 0.02f;

// Deterministic, fast normal-ish values: sum of uniforms from a per-row splitmix64 stream.
struct RowRng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float normal() {
    // Irwin-Hall with 4 uniforms: mean 2, variance 1/3.
    float s = 0;
    for (int i = 0; i < 4; ++i) s += static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    return (s - 2.0f) * 1.7320508f;
  }
};

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

struct TensorPlan {
  std::string name;
  WeightRole role;
  std::vector<int64_t> dims;
  DType type;
  float mean, std;  // norms are ~1, matrices ~N(0, 0.02)
};

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third between.
bool use_more_bits(int64_t layer, int64_t n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

// The mixes llama.cpp's quantizer makes (llama_tensor_get_type) and their base type.
enum class Mix { None, Q3_K_M, Q4_K_M, Q5_K_M };

struct MixName {
  std::string_view name;
  Mix mix;
  DType base;
};
constexpr MixName kMixes[] = {
    {"q3_k_m", Mix::Q3_K_M, DType::Q3_K},
    {"q4_k_m", Mix::Q4_K_M, DType::Q4_K},
    {"q5_k_m", Mix::Q5_K_M, DType::Q5_K},
};

// Every --type the synthesizer accepts, for its error message.
std::string type_names() {
  std::string names;
  for (uint32_t id = 0; id < 64; ++id) {
    const auto info = dtype_info(id);
    if (!info || !info->computable) continue;
    std::string name(info->name);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names += (names.empty() ? "" : ", ") + name;
  }
  for (const MixName& m : kMixes) names += fmt::format(", {}", m.name);
  return names;
}

HParams preset_hparams(const SynthPreset& p, int64_t n_layer) {
  HParams hp;
  hp.arch = "llama";
  hp.name = p.name;
  hp.n_vocab = p.n_vocab;
  hp.n_embd = p.n_embd;
  hp.n_layer = n_layer;
  hp.n_head = p.n_head;
  hp.n_head_kv = p.n_head_kv;
  hp.n_ff = p.n_ff;
  hp.head_dim = p.n_embd / p.n_head;
  hp.n_rot = hp.head_dim;
  hp.n_ctx_train = p.n_ctx;
  hp.rope_freq_base = p.rope_freq_base;
  return hp;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = {
      {"tinyllama-1.1b", 32000, 2048, 5632, 22, 32, 4, 2048, 10000.0f, false, false},
      {"llama-3.2-1b", 128256, 2048, 8192, 16, 32, 8, 131072, 500000.0f, true, true},
      {"llama-2-7b", 32000, 4096, 11008, 32, 32, 32, 4096, 10000.0f, false, false},
      // Small shapes for tests: real vocabulary, a few layers.
      {"test-4l", 32000, 128, 384, 4, 4, 2, 2048, 10000.0f, false, false},
      {"test-8l", 32000, 256, 768, 8, 8, 2, 2048, 10000.0f, true, false},
  };
  return presets;
}

Status write_synthetic_model(const SynthOptions& o, const std::string& output, ThreadPool& pool,
                             const std::function<void(size_t, size_t)>& progress) {
  const SynthPreset* p = nullptr;
  for (const auto& candidate : synth_presets()) {
    if (candidate.name == o.preset) p = &candidate;
  }
  if (p == nullptr) {
    std::string names;
    for (const auto& c : synth_presets()) names += (names.empty() ? "" : ", ") + c.name;
    return Status::Errorf("unknown preset '{}' (presets: {})", o.preset, names);
  }
  std::string lower_type(o.type);
  for (char& c : lower_type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  Mix mix = Mix::None;
  auto parsed = dtype_from_name(o.type);
  for (const MixName& m : kMixes) {
    if (m.name == lower_type) {
      mix = m.mix;
      parsed = m.base;
    }
  }
  if (!parsed || !dtype_info(*parsed).computable) {
    return Status::Errorf("unsupported type '{}' (types: {})", o.type, type_names());
  }
  const DType matrix_type = *parsed;
  LL_ASSIGN_OR_RETURN(auto vocab_file, gguf::GgufFile::open(o.vocab_path));
  LL_ASSIGN_OR_RETURN(auto tokens, vocab_file->get_string_array("tokenizer.ggml.tokens"));
  LL_ASSIGN_OR_RETURN(std::string tok_model, vocab_file->get_string("tokenizer.ggml.model"));
  if (tok_model != "llama") {
    return Status::Errorf("{}: tokenizer '{}' is not supported; use a SentencePiece (llama) vocabulary", o.vocab_path,
                          tok_model);
  }
  if (static_cast<int64_t>(tokens.size()) > p->n_vocab) {
    return Status::Errorf("{}: {} tokens do not fit the preset's {}-token vocabulary", o.vocab_path, tokens.size(),
                          p->n_vocab);
  }
  const int64_t n_layer = o.n_layer_override > 0 ? o.n_layer_override : p->n_layer;
  const HParams hp = preset_hparams(*p, n_layer);

  gguf::GgufWriter w;
  w.set_string("general.architecture", hp.arch);
  w.set_string("general.name", fmt::format("synthetic {} {}", p->name, o.type));
  w.set_uint32("general.file_type", static_cast<uint32_t>(matrix_type));
  write_hparams(hp, w);
  // Copy the tokenizer; pad to the preset's vocabulary with unused tokens if it is larger.
  for (const auto& kv : vocab_file->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) == 0) w.copy_kv(kv);
  }
  if (static_cast<int64_t>(tokens.size()) < p->n_vocab) {
    LL_ASSIGN_OR_RETURN(auto scores, vocab_file->get_float_array("tokenizer.ggml.scores"));
    LL_ASSIGN_OR_RETURN(auto types, vocab_file->get_int_array("tokenizer.ggml.token_type"));
    std::vector<std::string> all(tokens.begin(), tokens.end());
    std::vector<int32_t> all_types(types.begin(), types.end());
    for (int64_t i = static_cast<int64_t>(tokens.size()); i < p->n_vocab; ++i) {
      all.push_back(fmt::format("<unused{}>", i));
      scores.push_back(-1e9f);
      all_types.push_back(5);  // UNUSED
    }
    w.set_string_array("tokenizer.ggml.tokens", all);
    w.set_float32_array("tokenizer.ggml.scores", scores);
    w.set_int32_array("tokenizer.ggml.token_type", all_types);
  }

  // The K-quant mixes as llama.cpp makes them for Llama models: Q6_K for the output head
  // (token_embd when the output is tied to it);
  // Q4_K_M and Q5_K_M: Q6_K for the attn_v and ffn_down of the layers use_more_bits picks;
  // Q3_K_M: Q5_K for attn_v of layers 0-1
  // and ffn_down of the first sixteenth of the layers, Q4_K for the other attn_v, ffn_down
  // and every attn_output; the base type elsewhere.
  auto type_for = [&](WeightRole role, int64_t layer) {
    if (mix == Mix::None) return matrix_type;
    // A tied model's token_embd is also its output head.
    if (role == WeightRole::Output || (role == WeightRole::TokenEmbd && p->tied_output)) return DType::Q6_K;
    const bool v_or_down = role == WeightRole::AttnV || role == WeightRole::FfnDown;
    switch (mix) {
      case Mix::Q4_K_M:
      case Mix::Q5_K_M:
        return v_or_down && use_more_bits(layer, n_layer) ? DType::Q6_K : matrix_type;
      case Mix::Q3_K_M:
        if (role == WeightRole::AttnV) return layer < 2 ? DType::Q5_K : DType::Q4_K;
        if (role == WeightRole::FfnDown) return layer < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
        if (role == WeightRole::AttnOutput) return DType::Q4_K;
        return matrix_type;
      case Mix::None:
        break;
    }
    return matrix_type;
  };
  // The optional tensors a preset has: an untied output head, Llama 3 frequency factors.
  auto has_optional = [&](WeightRole role) {
    return (role == WeightRole::Output && !p->tied_output) || (role == WeightRole::RopeFreqs && p->llama3_rope);
  };
  std::vector<TensorPlan> plan;
  for (const WeightInstance& t : weight_instances(*find_arch(hp.arch), n_layer)) {
    const WeightSpec& spec = *t.spec;
    if (!spec.required && !has_optional(spec.role)) continue;
    if (spec.f32) {
      plan.push_back({t.name(), spec.role, weight_shape(spec, hp), DType::F32, 1, 0.05f});
    } else {
      plan.push_back({t.name(), spec.role, weight_shape(spec, hp), type_for(spec.role, t.layer), 0, kWeightStd});
    }
  }

  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorPlan& t = plan[i];
    const int64_t cols = t.dims[0], rows = t.dims.size() > 1 ? t.dims[1] : 1;
    if (cols % dtype_info(t.type).block_elems != 0) {
      return Status::Errorf("preset '{}': {} has rows of {} elements, not whole {}-element blocks of {}; choose "
                            "another type or a larger preset",
                            p->name, t.name, cols, dtype_info(t.type).block_elems, dtype_name(t.type));
    }
    const int64_t rb = row_bytes(t.type, cols);
    std::vector<uint8_t> data(static_cast<size_t>(rb * rows));
    const uint64_t base_seed = hash_name(t.name, o.seed);
    // Llama 3 frequency factors: 1 for high frequencies, up to 8 for the lowest.
    const bool rope_factors = t.role == WeightRole::RopeFreqs;
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = r0; r < r1; ++r) {
        RowRng rng{base_seed + static_cast<uint64_t>(r) * 0x632BE59BD9B4E019ull};
        for (int64_t c = 0; c < cols; ++c) {
          row[c] = rope_factors ? 1.0f + 7.0f * static_cast<float>(c) / static_cast<float>(cols)
                                : t.mean + t.std * rng.normal();
        }
        kernels::quantize_row(t.type, row.data(), data.data() + r * rb, cols);
      }
    });
    w.add_tensor(t.name, t.type, t.dims, data.data(), data.size());
    if (progress) progress(i + 1, plan.size());
  }
  return w.write(output);
}

}  // namespace ll::model
