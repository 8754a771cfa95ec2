#include "cluster/shard_cache.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "cluster/content_hash.h"

namespace ll::cluster {
namespace fs = std::filesystem;

namespace {
// Uploads that may be open at once; a head that starts more loses the oldest.
constexpr size_t kMaxPartial = 4;
}  // namespace

std::string ShardCache::default_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return (fs::path(xdg) / "lingualinked").string();
  }
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "lingualinked").string();
}

Result<ShardCache> ShardCache::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Errorf("shard cache {}: {}", dir, ec.message());
  return ShardCache(dir);
}

ShardCache::~ShardCache() {
  while (!partial_.empty()) drop_partial(partial_.begin()->first);
}

std::string ShardCache::path_of(const std::string& hash, const char* ext) const {
  return (fs::path(dir_) / (hash + ext)).string();
}

std::vector<std::string> ShardCache::hashes() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const fs::path& p = entry.path();
    if (p.extension() == ".gguf" && is_content_hash(p.stem().string())) out.push_back(p.stem().string());
  }
  return out;
}

Result<ShardCache::Cached> ShardCache::find(const std::string& hash) const {
  if (!is_content_hash(hash)) return Status::Errorf("'{}' is not a SHA-256 content hash", hash);
  const std::string path = path_of(hash, ".gguf");
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Errorf("shard {} is not in the cache", hash);
  return Cached{path, verified_.count(hash) != 0};
}

Status ShardCache::verify(const std::string& path, const std::string& hash) {
  LL_ASSIGN_OR_RETURN(std::string actual, sha256_file(path));
  if (actual != hash) {
    std::error_code ec;
    fs::remove(path, ec);
    return Status::Errorf("cached shard {} was corrupt (its SHA-256 is {}); removed", hash, actual);
  }
  return Status::Ok();
}

void ShardCache::drop_partial(const std::string& hash) {
  auto it = partial_.find(hash);
  if (it == partial_.end()) return;
  std::fclose(it->second.file);
  std::error_code ec;
  fs::remove(path_of(hash, ".partial"), ec);
  partial_.erase(it);
}

Result<uint64_t> ShardCache::write_chunk(const std::string& hash, uint64_t total, uint64_t offset,
                                         std::span<const uint8_t> bytes, uint64_t max_total) {
  if (!is_content_hash(hash)) return Status::Errorf("'{}' is not a SHA-256 content hash", hash);
  if (total == 0 || total > max_total) {
    return Status::Errorf("shard {} of {} bytes refused (limit {} bytes)", hash, total, max_total);
  }
  if (offset == 0) {
    drop_partial(hash);  // a restarted upload
    if (partial_.size() >= kMaxPartial) drop_partial(partial_.begin()->first);
    std::FILE* f = std::fopen(path_of(hash, ".partial").c_str(), "wb");
    if (f == nullptr) return Status::Errorf("shard cache {}: {}", dir_, std::strerror(errno));
    partial_[hash] = {f, total, 0};
  }
  auto it = partial_.find(hash);
  if (it == partial_.end()) return Status::Errorf("shard {}: chunk at offset {} without a start", hash, offset);
  Partial& p = it->second;
  if (p.total != total || offset != p.received || bytes.size() > total - offset) {
    drop_partial(hash);
    return Status::Errorf("shard {}: chunk of {} bytes at offset {} does not continue the upload", hash, bytes.size(),
                          offset);
  }
  if (std::fwrite(bytes.data(), 1, bytes.size(), p.file) != bytes.size()) {
    drop_partial(hash);
    return Status::Errorf("shard cache {}: write failed: {}", dir_, std::strerror(errno));
  }
  p.received += bytes.size();
  const uint64_t received = p.received;
  if (received < total) return received;

  const bool flushed = std::fclose(p.file) == 0;
  p.file = nullptr;
  partial_.erase(it);
  const std::string partial_path = path_of(hash, ".partial");
  std::error_code ec;
  if (!flushed) {
    fs::remove(partial_path, ec);
    return Status::Errorf("shard cache {}: write failed", dir_);
  }
  auto actual = sha256_file(partial_path);
  if (!actual.ok() || actual.value() != hash) {
    fs::remove(partial_path, ec);
    return Status::Errorf("shard {} arrived corrupt (SHA-256 {})", hash, actual.ok() ? actual.value() : actual.error());
  }
  fs::rename(partial_path, path_of(hash, ".gguf"), ec);
  if (ec) return Status::Errorf("shard cache {}: {}", dir_, ec.message());
  verified_.insert(hash);
  return received;
}

}  // namespace ll::cluster
