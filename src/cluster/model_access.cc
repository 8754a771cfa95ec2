#include "cluster/model_access.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/regular_file.h"

namespace ll::cluster {
namespace fs = std::filesystem;

namespace {

// Whole components: /models/a holds /models/a/x but not /models/ab/x.
bool is_inside(const fs::path& file, const fs::path& dir) {
  auto f = file.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++f) {
    if (d->empty()) continue;  // the trailing "" of "/models/"
    if (f == file.end() || *f != *d) return false;
  }
  return true;
}

}  // namespace

Result<ModelAccess> ModelAccess::create(const std::vector<std::string>& dirs) {
  if (dirs.empty()) return Status::Error("no model directory given; name one with --models DIR");
  std::vector<fs::path> real;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    fs::path p = fs::canonical(dir, ec);
    if (ec) return Status::Errorf("model directory {}: {}", dir, ec.message());
    if (!fs::is_directory(p, ec)) return Status::Errorf("model directory {} is not a directory", dir);
    if (std::find(real.begin(), real.end(), p) == real.end()) real.push_back(std::move(p));
  }
  return ModelAccess(std::move(real));
}

std::string ModelAccess::describe() const {
  std::string out;
  for (const fs::path& d : dirs_) out += (out.empty() ? "" : ", ") + d.string();
  return out;
}

Result<std::string> ModelAccess::resolve(const std::string& path) const {
  if (path.empty()) return Status::Error("empty model path");
  const fs::path given(path);
  if (std::any_of(given.begin(), given.end(), [](const fs::path& c) { return c == ".."; })) {
    return Status::Errorf("model path {} contains '..'; name the file inside the directories this worker serves ({})",
                          path, describe());
  }
  std::error_code ec;
  const fs::path real = fs::canonical(given, ec);
  if (ec) return Status::Errorf("model path {}: {}", path, ec.message());
  if (std::none_of(dirs_.begin(), dirs_.end(), [&](const fs::path& d) { return is_inside(real, d); })) {
    const std::string leads = real == given ? "" : fmt::format(" (it leads to {})", real.string());
    return Status::Errorf("model path {}{} is outside the directories this worker serves ({}); start the worker "
                          "with --models DIR",
                          path, leads, describe());
  }
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) return Status::Errorf("model path {}: {}", path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::Errorf("model path {} is {}, not a regular file", path, file_type_name(st.st_mode));
  return real.string();
}

std::string model_directory(const std::string& model_path) {
  return fs::absolute(model_path).parent_path().string();
}

}  // namespace ll::cluster
