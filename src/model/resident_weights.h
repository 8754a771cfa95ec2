#pragma once
// Weights read out of the model file into memory of the process's own (--no-mmap), instead of
// being used where the file is mapped. On the 2-core AVX-512 host of docs/BENCHMARKS.md, one-
// thread generation runs 15-28% faster from such a copy than from the page cache's pages, and
// the copy can be laid out for the kernels (kernels::pack_row_lanes).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/llama_weights.h"

namespace ll::model {

class ResidentWeights {
 public:
  // Reads each distinct tensor that `refs` point to from the file at `path` (whose tensors
  // `file` describes) once, into one anonymous mapping, and points the refs at the copies.
  // Only these tensors are read: the others' bytes stay on disk. Matrices that are only
  // multiplied are repacked where this machine's kernels read them faster so
  // (kernels::pack_row_lanes); `embedding`'s rows are looked up, so its tensor is not.
  static Result<std::unique_ptr<ResidentWeights>> copy(const std::string& path, const gguf::GgufFile& file,
                                                       const std::vector<WeightRef*>& refs,
                                                       const WeightRef& embedding);
  ~ResidentWeights();
  ResidentWeights(const ResidentWeights&) = delete;
  ResidentWeights& operator=(const ResidentWeights&) = delete;

  uint64_t bytes() const { return size_; }

 private:
  ResidentWeights() = default;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ll::model
