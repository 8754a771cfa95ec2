#pragma once
// A loaded model: the mapped GGUF file, its hyper-parameters, weight bindings and vocabulary.
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "gguf/gguf_file.h"
#include "model/hparams.h"
#include "model/llama_weights.h"
#include "text/vocab.h"

namespace ll::model {

struct LoadOptions {
  // For llama2.c checkpoints, the tokenizer.bin to pair with it (default: tokenizer.bin or
  // tok<N>.bin next to the checkpoint).
  std::string tokenizer_path;
};

class Model {
 public:
  // Accepts a GGUF file or a llama2.c checkpoint (converted in memory).
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& options = {});

  const gguf::GgufFile& file() const { return *file_; }
  const HParams& hparams() const { return hp_; }
  const LlamaWeights& weights() const { return weights_; }
  const text::Vocab& vocab() const { return vocab_; }
  uint64_t weight_bytes() const;  // bytes of all tensors

 private:
  Model() = default;
  std::unique_ptr<gguf::GgufFile> file_;
  HParams hp_;
  LlamaWeights weights_;
  text::Vocab vocab_;
};

}  // namespace ll::model
