#pragma once
// Opening the files this project reads (models, shards, keys, allow lists, profiles): only
// regular files. The open cannot block (a FIFO with no writer would hold the opening thread
// forever) and the descriptor's own type is checked, so a path swapped after a check is caught.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace ll {

// "a FIFO", "a directory", "a character device", ... for a stat mode.
std::string file_type_name(mode_t mode);

// An open read-only descriptor of a regular file; closes it when destroyed. Not thread-safe.
class RegularFile {
 public:
  // Refuses anything but a regular file with "PATH is a FIFO, not a regular file" (or its type).
  static Result<RegularFile> open(const std::string& path);
  RegularFile(RegularFile&& other) noexcept;
  RegularFile& operator=(RegularFile&& other) noexcept;
  ~RegularFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  RegularFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole content of a small regular file (key files, allow lists, JSON profiles); a file
// longer than `max_bytes` is refused rather than read.
Result<std::string> read_regular_file(const std::string& path, size_t max_bytes = size_t{16} << 20);

}  // namespace ll
