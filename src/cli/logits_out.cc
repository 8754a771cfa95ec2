#include "cli/logits_out.h"

#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace ll::cli {

static_assert(std::endian::native == std::endian::little, "logits are written as the host's float32: little-endian");

Result<std::set<int64_t>> parse_logits_positions(const std::string& list) {
  std::set<int64_t> rows;
  size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    int64_t row = -1;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), row);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || row < 0) {
      return Status::Errorf("--logits-positions: '{}' is not a row number (0 = the last prompt position, k = after "
                            "the k-th generated token); give e.g. 0,1,2",
                            item);
    }
    if (!rows.insert(row).second) return Status::Errorf("--logits-positions: row {} is listed twice", row);
    start = comma + 1;
  }
  return rows;
}

Result<std::unique_ptr<LogitsWriter>> LogitsWriter::open(const std::string& path, std::set<int64_t> rows) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return Status::Errorf("--logits-out {}: cannot create: {}", path, std::strerror(errno));
  return std::unique_ptr<LogitsWriter>(new LogitsWriter(path, f, std::move(rows)));
}

LogitsWriter::LogitsWriter(std::string path, std::FILE* file, std::set<int64_t> rows)
    : path_(std::move(path)), file_(file), rows_(std::move(rows)) {}

LogitsWriter::~LogitsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Status LogitsWriter::write(int64_t row, std::span<const float> logits) {
  if (!rows_.empty() && rows_.count(row) == 0) return Status::Ok();
  if (std::fwrite(logits.data(), sizeof(float), logits.size(), file_) != logits.size()) {
    return Status::Errorf("--logits-out {}: cannot write: {}", path_, std::strerror(errno));
  }
  return Status::Ok();
}

Status LogitsWriter::close(int64_t rows_seen) {
  const int err = std::fclose(file_) == 0 ? 0 : errno;
  file_ = nullptr;
  if (err != 0) return Status::Errorf("--logits-out {}: cannot write: {}", path_, std::strerror(err));
  if (!rows_.empty() && *rows_.rbegin() >= rows_seen) {
    return Status::Errorf("--logits-out {}: row {} was asked for, but the generation ended after {} row(s); "
                          "generate more tokens (-n) or ask for earlier rows",
                          path_, *rows_.rbegin(), rows_seen);
  }
  return Status::Ok();
}

}  // namespace ll::cli
