#include "core/mapped_file.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/regular_file.h"

namespace ll {

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  LL_ASSIGN_OR_RETURN(RegularFile file, RegularFile::open(path));
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(file.size());
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p == MAP_FAILED) return Status::Errorf("{}: mmap failed: {}", path, std::strerror(errno));
    f->data_ = static_cast<const uint8_t*>(p);
  }
  return f;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace ll
