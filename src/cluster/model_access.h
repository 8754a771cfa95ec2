#pragma once
// Which model files a worker opens when a head names one (LoadSegment, ProfileRequest): only
// regular files whose real path, after every symbolic link is followed, lies inside one of the
// directories the worker's owner allowed (`worker --models DIR`). The path itself may not step
// up with "..". Opening then goes through RegularFile, which checks the type once more on the
// descriptor.
// Immutable after create(); any thread may call resolve().
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"

namespace ll::cluster {

class ModelAccess {
 public:
  // Each directory is resolved to its real path now; one that is missing or not a directory is an error.
  static Result<ModelAccess> create(const std::vector<std::string>& dirs);

  // The real path to open for `path`, or why it is refused (naming the path and the directories).
  Result<std::string> resolve(const std::string& path) const;
  // "A, B": the allowed directories, for messages.
  std::string describe() const;

 private:
  explicit ModelAccess(std::vector<std::filesystem::path> dirs) : dirs_(std::move(dirs)) {}
  std::vector<std::filesystem::path> dirs_;
};

// The directory a worker must serve (--models) for a head to load `model_path` from it.
std::string model_directory(const std::string& model_path);

}  // namespace ll::cluster
