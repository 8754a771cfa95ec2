#pragma once
// One table per architecture: every weight tensor (GGUF name, shape as an expression of the
// hyper-parameters, required or optional, the unit that owns it, whether it must be F32) and
// the metadata keys. Loading, the graph, synthesis, imports and benchmarks all read it, so a
// new architecture is a new table plus its forward-pass differences.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/hparams.h"
#include "model/units.h"

namespace ll::model {

// Every weight a forward pass knows; an architecture's table says which ones it has.
enum class WeightRole {
  TokenEmbd,
  TokenEmbdNorm,      // BLOOM: LayerNorm of the embeddings
  TokenEmbdNormBias,
  AttnNorm,
  AttnNormBias,       // LayerNorm architectures
  AttnQ,
  AttnQBias,
  AttnK,
  AttnKBias,
  AttnV,
  AttnVBias,
  AttnQkv,            // Q, K and V fused: output rows [Q | K | V]
  AttnQkvBias,
  AttnOutput,
  AttnOutputBias,
  AttnPostNorm,       // Gemma 2: normalizes the attention's output before the residual add
  FfnNorm,
  FfnNormBias,
  FfnGate,
  FfnUp,
  FfnUpBias,
  FfnGateUp,          // gate and up fused: output rows [gate | up]
  FfnDown,
  FfnDownBias,
  FfnPostNorm,        // Gemma 2: normalizes the FFN's output before the residual add
  OutputNorm,
  OutputNormBias,
  Output,
  RopeFreqs,
};

// A tensor dimension, as a function of the hyper-parameters.
enum class Dim { Embd, Vocab, QDim, KvDim, QkvDim, Ff, FfTwice, RopePairs };

// How an architecture's forward pass differs from Llama's; the table's weights say the rest
// (biases, fused projections and extra norms are used when the table has them).
enum class NormKind { Rms, Layer };  // Layer: LayerNorm, mean removed, with a bias
enum class RopeKind {
  None,   // no rotation: positions enter through ALiBi biases (BLOOM)
  Norm,   // adjacent pairs (x[2i], x[2i+1]) rotate, as in Llama
  Neox,   // halves pair up (x[i], x[i + n_rot/2]), as in GPT-NeoX, Qwen2, Phi-3, Gemma
};
enum class FfnKind {
  SiluGated,  // down(silu(gate x) * up x)
  GeluGated,  // down(gelu(gate x) * up x)
  Gelu,       // down(gelu(up x)): no gate
};
enum class SlidingWindowLayers { None, All, Even };  // layers whose attention sees only the window
int64_t dim_value(Dim d, const HParams& hp);

struct WeightSpec {
  WeightRole role;
  std::string_view name;  // GGUF tensor name; per-layer names hold "{}" for the layer
  std::vector<Dim> shape;  // ggml order: ne0 (the contiguous dimension) first
  UnitKind unit;           // the unit kind that reads it (a model-wide weight: every such unit)
  bool required;
  bool f32;     // norms and frequency factors are F32 whatever the file's type
  bool matvec;  // multiplied with each token's vector: 2 * rows * cols FLOPs per token
  // When the tensor is absent this role's tensor stands in (an output head tied to the embedding).
  std::optional<WeightRole> fallback;

  bool per_layer() const { return name.find("{}") != std::string_view::npos; }
};

struct ArchSpec {
  std::string_view name;  // general.architecture
  // In the order files list them: the per-layer entries are one contiguous block, repeated
  // for every layer.
  std::vector<WeightSpec> weights;
  NormKind norm = NormKind::Rms;
  RopeKind rope = RopeKind::Norm;
  FfnKind ffn = FfnKind::SiluGated;
  bool alibi = false;        // attention scores biased by -slope_h * distance (max bias 8)
  bool embed_scale = false;  // embeddings multiplied by sqrt(n_embd) (Gemma)
  // Layers where the attention window (<arch>.attention.sliding_window) applies.
  SlidingWindowLayers sliding_window = SlidingWindowLayers::None;
  // Defaults of what a file may leave out: the window size and the soft-capping constants.
  int64_t default_window = 0;
  float default_attn_softcap = 0.0f;
  float default_final_softcap = 0.0f;

  bool has(WeightRole role) const;

  const WeightSpec& weight(WeightRole role) const;  // the role must be in the table
};

// The table for an architecture, or nullptr when it is not supported.
const ArchSpec* find_arch(std::string_view name);
std::string supported_archs();  // "llama, mistral"

// Metadata keys of the hyper-parameters; all are spelled "<arch>.<suffix>".
enum class Key {
  ContextLength,
  EmbeddingLength,
  FeedForwardLength,
  BlockCount,
  HeadCount,
  HeadCountKv,
  KeyLength,
  ValueLength,
  RmsEpsilon,
  LayerNormEpsilon,
  RopeDimensionCount,
  RopeFreqBase,
  RopeScalingType,
  RopeScalingFactor,
  VocabSize,
  SlidingWindow,
  AttnLogitSoftcapping,
  FinalLogitSoftcapping,
};
std::string key_name(std::string_view arch, Key key);

// One tensor of a model: a table entry and its layer (-1 for model-wide weights).
struct WeightInstance {
  const WeightSpec* spec;
  int64_t layer;
  std::string name() const;
};

// Every tensor a model of n_layer layers may hold, in file order.
std::vector<WeightInstance> weight_instances(const ArchSpec& arch, int64_t n_layer);

std::vector<int64_t> weight_shape(const WeightSpec& spec, const HParams& hp);

// Whether the unit reads the tensor; a model-wide weight is read by every unit of its kind.
bool unit_reads(const Unit& unit, const WeightInstance& w);

}  // namespace ll::model
