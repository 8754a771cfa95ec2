#pragma once
// `run --logits-out FILE [--logits-positions LIST]`: the raw logits of chosen rows of a
// generation, float32 little-endian, [rows][n_vocab] (row 0 at the last prompt position, row k
// after the k-th generated token), the layout of llama.cpp references such as
// reference/arch-tiny/*/p*.logits.f32, so that any model can be held against another engine.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "core/status.h"

namespace ll::cli {

// "0,1,5" (each row once, any order; written in row order). Empty: every row.
Result<std::set<int64_t>> parse_logits_positions(const std::string& list);

class LogitsWriter {
 public:
  // Creates (or truncates) `path` at once, so that a bad path fails before generating.
  static Result<std::unique_ptr<LogitsWriter>> open(const std::string& path, std::set<int64_t> rows);
  ~LogitsWriter();

  // Appends the row when it was chosen.
  Status write(int64_t row, std::span<const float> logits);
  // Flushes and closes; an error when a chosen row never came (the generation ended before it).
  Status close(int64_t rows_seen);

 private:
  LogitsWriter(std::string path, std::FILE* file, std::set<int64_t> rows);
  std::string path_;
  std::FILE* file_;
  std::set<int64_t> rows_;  // empty: all
};

}  // namespace ll::cli
