#include "graph/shard.h"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "gguf/gguf_writer.h"

namespace ll::graph {

std::string shard_file_name(const std::string& stem, int segment, int n_segments) {
  return fmt::format("{}.seg{}of{}.gguf", stem, segment + 1, n_segments);
}

Status write_shard(const model::Model& m, const Graph& g, model::UnitRange r, const std::string& path) {
  const gguf::GgufFile& f = m.file();
  const bool needs_tokenizer = r.begin == 0 || r.end == static_cast<int64_t>(g.units.size());
  gguf::GgufWriter w;
  for (const auto& kv : f.metadata()) {
    if (kv.key.rfind("lingualinked.shard.", 0) == 0) continue;
    if (!needs_tokenizer && kv.key.rfind("tokenizer.", 0) == 0) continue;
    w.copy_kv(kv);
  }
  w.set_uint32(model::key_name(m.hparams().arch, model::Key::VocabSize), static_cast<uint32_t>(m.hparams().n_vocab));
  w.set_uint32(model::kShardUnitBegin, static_cast<uint32_t>(r.begin));
  w.set_uint32(model::kShardUnitEnd, static_cast<uint32_t>(r.end));
  std::set<std::string> added;
  for (int64_t u = r.begin; u < r.end; ++u) {
    for (const WeightInfo& wi : g.units[u].weights) {
      if (!added.insert(wi.name).second) continue;  // tied embeddings, rope factors
      const gguf::TensorInfo* t = f.find_tensor(wi.name);
      if (t == nullptr) return Status::Errorf("{}: missing tensor '{}'", f.name(), wi.name);
      w.add_tensor_ref(t->name, t->type, t->dims, t->data, t->nbytes);
    }
  }
  return w.write(path);
}

Result<std::vector<std::string>> write_shards(const model::Model& m, const Graph& g, const Partition& p,
                                              const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Errorf("{}: cannot create directory: {}", dir, ec.message());
  const std::string stem = fs::path(m.file().name()).stem().string();
  const int n = static_cast<int>(p.segments.size());
  std::vector<std::string> paths;
  for (int s = 0; s < n; ++s) {
    const std::string path = (fs::path(dir) / shard_file_name(stem, s, n)).string();
    LL_RETURN_IF_ERROR(write_shard(m, g, p.segments[s], path));
    paths.push_back(path);
  }
  return paths;
}

}  // namespace ll::graph
