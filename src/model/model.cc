#include "model/model.h"

#include <filesystem>
#include <fstream>
#include <string_view>

#include "model/llama2c_import.h"

namespace ll::model {
namespace {

// llama2.c ships its tokenizer beside the checkpoint: tokenizer.bin (32000 tokens) or tok<N>.bin.
std::string find_llama2c_tokenizer(const std::string& checkpoint) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(checkpoint).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (fs::exists(dir / "tokenizer.bin", ec)) return (dir / "tokenizer.bin").string();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tok", 0) == 0 && entry.path().extension() == ".bin") return entry.path().string();
  }
  return "";
}

// A regular file that GGUF refuses and that lacks the GGUF magic: more likely a damaged llama2.c
// checkpoint than anything else, so the importer's reason is given too.
Status not_a_model_file(const std::string& path, const Status& gguf_error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return gguf_error;
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
  if (std::string_view(magic, sizeof magic) == "GGUF") return gguf_error;
  std::string why = check_llama2c_checkpoint(path).message();
  if (why.starts_with(path + ": ")) why.erase(0, path.size() + 2);
  return Status::Errorf("{}: neither a GGUF file (it does not start with \"GGUF\") nor a llama2.c checkpoint ({}); "
                        "give a GGUF model or a llama2.c .bin checkpoint",
                        path, why);
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model());
  const bool converted = looks_like_llama2c(path);  // held in memory already
  if (converted) {
    std::string tok = options.tokenizer_path.empty() ? find_llama2c_tokenizer(path) : options.tokenizer_path;
    if (tok.empty()) {
      return Status::Errorf("{}: llama2.c checkpoint without a tokenizer; pass --tokenizer tokenizer.bin", path);
    }
    LL_ASSIGN_OR_RETURN(std::vector<uint8_t> image, llama2c_to_gguf(path, tok));
    LL_ASSIGN_OR_RETURN(m->file_, gguf::GgufFile::from_bytes(std::move(image), path));
  } else {
    auto file = gguf::GgufFile::open(path);
    if (!file.ok()) return not_a_model_file(path, file.status());
    m->file_ = std::move(file).value();
  }
  const gguf::GgufFile& f = *m->file_;
  LL_ASSIGN_OR_RETURN(m->hp_, read_hparams(f));
  m->arch_ = find_arch(m->hp_.arch);  // read_hparams refused any other
  LL_ASSIGN_OR_RETURN(m->hp_.n_vocab, vocab_size(f, m->hp_));
  m->file_units_ = all_units(m->hp_);
  if (f.find(kShardUnitBegin) != nullptr) {
    LL_ASSIGN_OR_RETURN(uint64_t begin, f.get_uint(kShardUnitBegin));
    LL_ASSIGN_OR_RETURN(uint64_t end, f.get_uint(kShardUnitEnd));
    if (begin >= end || end > static_cast<uint64_t>(unit_count(m->hp_))) {
      return Status::Errorf("{}: shard unit range {}..{} is invalid for a model of {} units", path, begin, end,
                            unit_count(m->hp_));
    }
    m->file_units_ = {static_cast<int64_t>(begin), static_cast<int64_t>(end)};
  }
  if (options.whole_model && m->is_shard()) {
    return Status::Errorf("{}: is a shard holding {}, not a whole model; run it as a segment on a worker, "
                          "or run the full model file", path, describe_units(m->hp_, m->file_units_));
  }
  m->units_ = options.units.value_or(m->file_units_);
  if (m->units_.empty() || m->units_.begin < m->file_units_.begin || m->units_.end > m->file_units_.end) {
    return Status::Errorf("{}: holds units {}..{}, but units {}..{} were asked for", path, m->file_units_.begin,
                          m->file_units_.end - 1, m->units_.begin, m->units_.end - 1);
  }
  LL_ASSIGN_OR_RETURN(m->weights_, bind_llama_weights(f, m->hp_, m->units_));
  if (!options.mmap && !converted) {
    LL_ASSIGN_OR_RETURN(m->resident_,
                        ResidentWeights::copy(path, f, bound_weights(*m->arch_, m->hp_.n_layer, m->weights_),
                                                              m->weights_.token_embd));
  }
  if (f.find("tokenizer.ggml.tokens") == nullptr) return m;  // a middle shard needs no tokenizer
  LL_ASSIGN_OR_RETURN(m->vocab_, text::vocab_from_gguf(f));
  if (static_cast<int64_t>(m->vocab_.tokens.size()) != m->hp_.n_vocab) {
    return Status::Errorf("{}: the tokenizer has {} tokens but the embedding has {} rows", path,
                          m->vocab_.tokens.size(), m->hp_.n_vocab);
  }
  return m;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_->tensors()) total += t.nbytes;
  return total;
}

}  // namespace ll::model
