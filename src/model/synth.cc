#include "model/synth.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <functional>
#include <optional>

#include "core/quant_blocks.h"
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

// The 32-element type llama.cpp's quantizer puts in place of a 256-element one
// (convert_incompatible_tensor).
DType small_block_fallback(DType t) {
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::IQ4_XS: return DType::IQ4_NL;
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    default: return t;
  }
}

// The mixes llama.cpp's quantizer makes (llama_tensor_get_type) and their base type.
enum class Mix { None, Q3_K_M, Q4_K_M, Q5_K_M };

struct MixName {
  std::string_view name;
  Mix mix;
  DType base;
  uint32_t file_type;  // llama.cpp's llama_ftype, as general.file_type holds it
};
constexpr MixName kMixes[] = {
    {"q3_k_m", Mix::Q3_K_M, DType::Q3_K, 12},
    {"q4_k_m", Mix::Q4_K_M, DType::Q4_K, 15},
    {"q5_k_m", Mix::Q5_K_M, DType::Q5_K, 17},
};

// llama.cpp's llama_ftype of a file whose matrices are all of one type (its numbering is not
// the tensor types'); the K-quants' plain types are its "_S" variants.
uint32_t single_type_file_type(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q8_0: return 7;
    case DType::Q5_0: return 8;
    case DType::Q5_1: return 9;
    case DType::Q2_K: return 10;
    case DType::Q3_K: return 11;
    case DType::Q4_K: return 14;
    case DType::Q5_K: return 16;
    case DType::Q6_K: return 18;
    case DType::IQ4_NL: return 25;
    case DType::IQ4_XS: return 30;
    case DType::BF16: return 32;
    default: return 1024;  // llama.cpp's "guessed"
  }
}

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
  const ArchSpec& arch = *find_arch(p.arch);
  HParams hp;
  hp.arch = p.arch;
  hp.name = p.name;
  hp.n_vocab = p.n_vocab;
  hp.n_embd = p.n_embd;
  hp.n_layer = n_layer;
  hp.n_head = p.n_head;
  hp.n_head_kv = p.n_head_kv;
  hp.n_ff = p.n_ff;
  hp.head_dim = p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head;
  hp.n_rot = hp.head_dim;
  hp.n_ctx_train = p.n_ctx;
  hp.rope_freq_base = p.rope_freq_base;
  hp.norm_eps = p.norm_eps;
  if (arch.sliding_window != SlidingWindowLayers::None) hp.n_swa = p.sliding_window > 0 ? p.sliding_window : arch.default_window;
  hp.attn_softcap = arch.default_attn_softcap;
  hp.final_softcap = arch.default_final_softcap;
  return hp;
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  // Shapes from each model's published config.json.
  static const std::vector<SynthPreset> presets = {
      {.name = "tinyllama-1.1b", .n_vocab = 32000, .n_embd = 2048, .n_ff = 5632, .n_layer = 22, .n_head = 32,
       .n_head_kv = 4, .n_ctx = 2048},
      {.name = "llama-3.2-1b", .n_vocab = 128256, .n_embd = 2048, .n_ff = 8192, .n_layer = 16, .n_head = 32,
       .n_head_kv = 8, .n_ctx = 131072, .rope_freq_base = 500000.0f, .tied_output = true, .llama3_rope = true},
      {.name = "llama-2-7b", .n_vocab = 32000, .n_embd = 4096, .n_ff = 11008, .n_layer = 32, .n_head = 32,
       .n_head_kv = 32, .n_ctx = 4096},
      {.name = "qwen2.5-0.5b", .arch = "qwen2", .n_vocab = 151936, .n_embd = 896, .n_ff = 4864, .n_layer = 24,
       .n_head = 14, .n_head_kv = 2, .n_ctx = 32768, .rope_freq_base = 1000000.0f, .norm_eps = 1e-6f,
       .tied_output = true},
      {.name = "qwen2.5-1.5b", .arch = "qwen2", .n_vocab = 151936, .n_embd = 1536, .n_ff = 8960, .n_layer = 28,
       .n_head = 12, .n_head_kv = 2, .n_ctx = 32768, .rope_freq_base = 1000000.0f, .norm_eps = 1e-6f,
       .tied_output = true},
      {.name = "phi-3-mini", .arch = "phi3", .n_vocab = 32064, .n_embd = 3072, .n_ff = 8192, .n_layer = 32,
       .n_head = 32, .n_head_kv = 32, .n_ctx = 4096, .sliding_window = 2047},
      {.name = "gemma-2-2b", .arch = "gemma2", .n_vocab = 256000, .n_embd = 2304, .n_ff = 9216, .n_layer = 26,
       .n_head = 8, .n_head_kv = 4, .n_ctx = 8192, .head_dim = 256, .norm_eps = 1e-6f, .tied_output = true},
      // The sizes LinguaLinked's paper evaluated.
      {.name = "bloom-560m", .arch = "bloom", .n_vocab = 250880, .n_embd = 1024, .n_ff = 4096, .n_layer = 24,
       .n_head = 16, .n_head_kv = 16, .n_ctx = 2048, .tied_output = true},
      {.name = "bloom-1b1", .arch = "bloom", .n_vocab = 250880, .n_embd = 1536, .n_ff = 6144, .n_layer = 24,
       .n_head = 16, .n_head_kv = 16, .n_ctx = 2048, .tied_output = true},
      // Small shapes for tests: real vocabulary, a few layers.
      {.name = "test-4l", .n_vocab = 32000, .n_embd = 128, .n_ff = 384, .n_layer = 4, .n_head = 4, .n_head_kv = 2,
       .n_ctx = 2048},
      {.name = "test-8l", .n_vocab = 32000, .n_embd = 256, .n_ff = 768, .n_layer = 8, .n_head = 8, .n_head_kv = 2,
       .n_ctx = 2048, .tied_output = true},
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
  std::optional<uint32_t> mix_file_type;
  for (const MixName& m : kMixes) {
    if (m.name == lower_type) {
      mix = m.mix;
      parsed = m.base;
      mix_file_type = m.file_type;
    }
  }
  if (!parsed || !dtype_info(*parsed).computable) {
    return Status::Errorf("unsupported type '{}' (types: {})", o.type, type_names());
  }
  const DType matrix_type = *parsed;
  LL_ASSIGN_OR_RETURN(auto vocab_file, gguf::GgufFile::open(o.vocab_path));
  LL_ASSIGN_OR_RETURN(auto tokens, vocab_file->get_string_array("tokenizer.ggml.tokens"));
  if (static_cast<int64_t>(tokens.size()) > p->n_vocab) {
    return Status::Errorf("{}: {} tokens do not fit the preset's {}-token vocabulary", o.vocab_path, tokens.size(),
                          p->n_vocab);
  }
  const int64_t n_layer = o.n_layer_override > 0 ? o.n_layer_override : p->n_layer;
  const HParams hp = preset_hparams(*p, n_layer);

  gguf::GgufWriter w;
  w.set_string("general.architecture", hp.arch);
  w.set_string("general.name", fmt::format("synthetic {} {}", p->name, o.type));
  w.set_uint32("general.file_type", mix_file_type.value_or(single_type_file_type(matrix_type)));
  write_hparams(hp, w);
  // Copy the tokenizer; pad to the preset's vocabulary with unused tokens if it is larger.
  for (const auto& kv : vocab_file->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) == 0) w.copy_kv(kv);
  }
  if (static_cast<int64_t>(tokens.size()) < p->n_vocab) {
    // BPE vocabularies have no scores.
    const bool has_scores = vocab_file->find("tokenizer.ggml.scores") != nullptr;
    std::vector<float> scores;
    if (has_scores) {
      LL_ASSIGN_OR_RETURN(scores, vocab_file->get_float_array("tokenizer.ggml.scores"));
    }
    LL_ASSIGN_OR_RETURN(auto types, vocab_file->get_int_array("tokenizer.ggml.token_type"));
    std::vector<std::string> all(tokens.begin(), tokens.end());
    std::vector<int32_t> all_types(types.begin(), types.end());
    for (int64_t i = static_cast<int64_t>(tokens.size()); i < p->n_vocab; ++i) {
      all.push_back(fmt::format("<unused{}>", i));
      scores.push_back(-1e9f);
      all_types.push_back(5);  // UNUSED
    }
    w.set_string_array("tokenizer.ggml.tokens", all);
    if (has_scores) w.set_float32_array("tokenizer.ggml.scores", scores);
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
    // A fused QKV (Phi-3) gets one step more than the mix's base type.
    if (role == WeightRole::AttnQkv) return mix == Mix::Q3_K_M ? DType::Q4_K : mix == Mix::Q4_K_M ? DType::Q5_K : DType::Q6_K;
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
      const bool bias = spec.name.ends_with(".bias");
      plan.push_back({t.name(), spec.role, weight_shape(spec, hp), DType::F32, bias ? 0.0f : 1.0f, bias ? 0.02f : 0.05f});
    } else {
      plan.push_back({t.name(), spec.role, weight_shape(spec, hp), type_for(spec.role, t.layer), 0, kWeightStd});
    }
  }

  // A row must be whole blocks. Like llama.cpp's quantizer, a row that is not whole 256-element
  // super-blocks takes a 32-element type of about the same size (Qwen2.5-0.5B's 896 columns);
  // one that is not whole blocks of that either is refused.
  for (TensorPlan& t : plan) {
    if (t.dims[0] % kQK_K != 0) t.type = small_block_fallback(t.type);
    const int64_t block = dtype_info(t.type).block_elems;
    if (t.dims[0] % block != 0) {
      return Status::Errorf("type {} cannot store {}: its rows of {} elements are not a multiple of the type's {}-element "
                            "blocks; choose a type with smaller blocks (e.g. q8_0) or another preset",
                            dtype_name(t.type), t.name, t.dims[0], block);
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
