#pragma once
// A worker's content-addressed cache of model shards: DIR/<sha256>.gguf, where DIR is
// $XDG_CACHE_HOME/lingualinked or ~/.cache/lingualinked. A shard streamed by the head is
// written in order to DIR/<sha256>.partial and renamed into place only once its SHA-256
// equals its name, so a cached file is never trusted on its name alone.
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace ll::cluster {

class ShardCache {
 public:
  static std::string default_dir();
  // Creates `dir` if needed.
  static Result<ShardCache> open(const std::string& dir);
  ShardCache(ShardCache&&) = default;
  ShardCache& operator=(ShardCache&&) = default;
  ~ShardCache();

  std::vector<std::string> hashes() const;  // complete shards present
  // A complete shard in the cache, and whether this process has hashed it already.
  struct Cached {
    std::string path;
    bool verified = false;
  };
  Result<Cached> find(const std::string& hash) const;
  // Hashes the shard at `path` and removes it when its SHA-256 is not `hash`. Static so that a
  // background load can hash while the owner's thread alone touches the cache (mark_verified).
  static Status verify(const std::string& path, const std::string& hash);
  void mark_verified(const std::string& hash) { verified_.insert(hash); }
  // Appends the chunk at `offset` (chunks arrive in order). Returns the bytes received so far;
  // when that reaches `total` the shard has been verified and moved into place.
  Result<uint64_t> write_chunk(const std::string& hash, uint64_t total, uint64_t offset,
                               std::span<const uint8_t> bytes, uint64_t max_total);

 private:
  explicit ShardCache(std::string dir) : dir_(std::move(dir)) {}
  struct Partial {
    std::FILE* file = nullptr;
    uint64_t total = 0;
    uint64_t received = 0;
  };
  std::string path_of(const std::string& hash, const char* ext) const;
  void drop_partial(const std::string& hash);

  std::string dir_;
  std::map<std::string, Partial> partial_;
  std::set<std::string> verified_;
};

}  // namespace ll::cluster
