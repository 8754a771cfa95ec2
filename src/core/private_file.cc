#include "core/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace ll {

Status make_private_dir(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p, ec)) return Status::Ok();
  if (p.has_parent_path() && p.parent_path() != p) {
    if (Status st = make_private_dir(p.parent_path().string()); !st.ok()) return st;
  }
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::Errorf("{}: cannot create the directory: {}", path, std::strerror(errno));
  }
  if (!std::filesystem::is_directory(p, ec)) return Status::Errorf("{}: exists and is not a directory", path);
  return Status::Ok();
}

Status write_private_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Errorf("{}: cannot create: {}", tmp, std::strerror(errno));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return Status::Errorf("{}: cannot write: {}", tmp, std::strerror(write_errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    ::unlink(tmp.c_str());
    return Status::Errorf("{}: cannot rename {} into place: {}", path, tmp, std::strerror(rename_errno));
  }
  return Status::Ok();
}

}  // namespace ll
