#include "model/resident_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "core/regular_file.h"
#include "kernels/matmul.h"

namespace ll::model {

namespace {

constexpr uint64_t kTensorAlign = 64;  // what the kernels' aligned loads of a row start expect at best

uint64_t align_up(uint64_t v) { return (v + kTensorAlign - 1) / kTensorAlign * kTensorAlign; }

// Reads [offset, offset + bytes) of the file into dst; a short read means the file changed
// since it was opened.
Status read_exactly(int fd, uint8_t* dst, uint64_t bytes, uint64_t offset, const std::string& path) {
  while (bytes > 0) {
    const ssize_t got = pread(fd, dst, bytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::Errorf("{}: reading the weights failed: {}", path, std::strerror(errno));
    if (got == 0) return Status::Errorf("{}: the file ended early while its weights were read; was it changed?", path);
    dst += got;
    offset += static_cast<uint64_t>(got);
    bytes -= static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ResidentWeights>> ResidentWeights::copy(const std::string& path, const gguf::GgufFile& file,
                                                               const std::vector<WeightRef*>& refs,
                                                               const WeightRef& embedding) {
  // Where each distinct tensor goes in the copy (a tied output head shares the embedding).
  std::unordered_map<const gguf::TensorInfo*, uint64_t> placed;
  uint64_t total = 0;
  for (const WeightRef* ref : refs) {
    if (placed.emplace(ref->tensor, total).second) total += align_up(ref->tensor->nbytes);
  }
  std::unique_ptr<ResidentWeights> w(new ResidentWeights());
  if (total == 0) return w;
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return Status::Errorf("{}: cannot allocate {} MiB to hold the weights (--no-mmap): {}", path, total >> 20,
                          std::strerror(errno));
  }
  w->data_ = static_cast<uint8_t*>(p);
  w->size_ = total;
  // Huge pages where the kernel has them: a tenth of the page faults while the copy is read
  // (0.8-1.1 s instead of 1.9 s for 590 MiB here) and 4-7% faster generation. Advice only.
  madvise(p, total, MADV_HUGEPAGE);
  LL_ASSIGN_OR_RETURN(RegularFile f, RegularFile::open(path));
  for (const auto& [tensor, at] : placed) {
    // GgufFile::open checked that every tensor lies inside the file.
    const auto offset = static_cast<uint64_t>(tensor->data - file.base());
    LL_RETURN_IF_ERROR(read_exactly(f.fd(), w->data_ + at, tensor->nbytes, offset, path));
  }
  std::unordered_set<const gguf::TensorInfo*> packed;
  for (const WeightRef* ref : refs) {
    if (ref->tensor == embedding.tensor || ref->rows < 2 || !kernels::packs_row_lanes(ref->type)) continue;
    if (packed.insert(ref->tensor).second) {
      kernels::pack_row_lanes(ref->type, w->data_ + placed.at(ref->tensor), ref->rows, ref->cols);
    }
  }
  if (mprotect(w->data_, total, PROT_READ) != 0) {  // read-only, as the mapped file was
    return Status::Errorf("{}: cannot protect the weights' copy: {}", path, std::strerror(errno));
  }
  for (WeightRef* ref : refs) {
    ref->data = w->data_ + placed.at(ref->tensor);
    if (packed.contains(ref->tensor)) ref->layout = kernels::WeightLayout::kRowLanes;
  }
  return w;
}

ResidentWeights::~ResidentWeights() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace ll::model
