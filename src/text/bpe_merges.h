#pragma once
// The merge table of a byte-level BPE vocabulary (tokenizer.ggml.merges) and the merging of
// one word's symbols by it: the pair of lowest rank first, the leftmost one on ties.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ll::text {

class BpeMerges {
 public:
  using TokenLookup = std::function<int32_t(std::string_view)>;  // spelling -> id, or -1
  // Each line is "left right" (split at the first space after the first byte, as llama.cpp
  // does); left, right and their concatenation must be tokens. Line order is the rank.
  static Result<BpeMerges> create(const std::vector<std::string>& lines, const TokenLookup& token_id);

  // Merges a word given as the token ids of its characters; -1 marks a character that is no
  // token (it never merges). Returns the ids that remain, in order.
  std::vector<int32_t> merge(std::vector<int32_t> symbols) const;

 private:
  // An open-addressing table from a pair of token ids to its merge: loading a vocabulary of
  // a few 100k merges must stay fast, and std::unordered_map allocates a node for each.
  struct Slot {
    uint64_t pair = kEmpty;
    int32_t rank = 0;
    int32_t result = 0;
  };
  static constexpr uint64_t kEmpty = UINT64_MAX;  // ids are >= 0, so no pair has this key
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  size_t home(uint64_t pair) const { return static_cast<size_t>((pair * 0x9E3779B97F4A7C15ull) >> shift_); }
  const Slot* find(uint64_t pair) const;

  std::vector<Slot> slots_;  // a power of two, at most half full
  int shift_ = 64;
};

}  // namespace ll::text
