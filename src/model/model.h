#pragma once
// A loaded model: the mapped GGUF file (or a copy of its weights), its hyper-parameters,
// weight bindings and vocabulary.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "gguf/gguf_file.h"
#include "model/arch.h"
#include "model/hparams.h"
#include "model/llama_weights.h"
#include "model/resident_weights.h"
#include "model/units.h"
#include "text/vocab.h"

namespace ll::model {

struct LoadOptions {
  // For llama2.c checkpoints, the tokenizer.bin to pair with it (default: tokenizer.bin or
  // tok<N>.bin next to the checkpoint).
  std::string tokenizer_path;
  // Units to bind (default: all the file holds). Weights of other units are never touched.
  std::optional<UnitRange> units;
  // The caller runs every unit (generation on this device): a shard is refused with an error.
  bool whole_model = false;
  // Use the weights where the file is mapped (false: read them into memory of their own, as
  // llama.cpp's --no-mmap; slower to load, faster to generate on some machines).
  bool mmap = true;
};

// Metadata keys of a shard: the unit range [begin, end) whose tensors it holds.
inline constexpr const char* kShardUnitBegin = "lingualinked.shard.unit_begin";
inline constexpr const char* kShardUnitEnd = "lingualinked.shard.unit_end";

class Model {
 public:
  // Accepts a GGUF file or a llama2.c checkpoint (converted in memory).
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options = {});

  const gguf::GgufFile& file() const { return *file_; }
  const HParams& hparams() const { return hp_; }
  const ArchSpec& arch() const { return *arch_; }
  const LlamaWeights& weights() const { return weights_; }
  const text::Vocab& vocab() const { return vocab_; }
  bool has_vocab() const { return !vocab_.tokens.empty(); }
  UnitRange file_units() const { return file_units_; }  // what the file holds
  UnitRange units() const { return units_; }            // what was bound
  bool is_shard() const { return file_units_.begin != 0 || file_units_.end != unit_count(hp_); }
  uint64_t weight_bytes() const;  // bytes of all tensors
  bool weights_mapped() const { return resident_ == nullptr; }  // false: a copy (LoadOptions::mmap)

 private:
  Model() = default;
  std::unique_ptr<gguf::GgufFile> file_;
  HParams hp_;
  const ArchSpec* arch_ = nullptr;
  LlamaWeights weights_;
  std::unique_ptr<ResidentWeights> resident_;  // the copy weights_ points into, without mmap
  text::Vocab vocab_;
  UnitRange file_units_, units_;
};

}  // namespace ll::model
