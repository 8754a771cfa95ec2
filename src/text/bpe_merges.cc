#include "text/bpe_merges.h"

#include <fmt/format.h>

#include <bit>
#include <queue>

namespace ll::text {

Result<BpeMerges> BpeMerges::create(const std::vector<std::string>& lines, const TokenLookup& token_id) {
  if (lines.size() > static_cast<size_t>(INT32_MAX)) return Status::Errorf("too many merges ({})", lines.size());
  BpeMerges m;
  size_t capacity = 2;
  while (capacity < 2 * lines.size()) capacity *= 2;
  m.slots_.resize(capacity);
  m.shift_ = 64 - std::countr_zero(capacity);
  std::string joined;
  for (size_t rank = 0; rank < lines.size(); ++rank) {
    const std::string& line = lines[rank];
    const size_t space = line.empty() ? std::string::npos : line.find(' ', 1);
    if (space == std::string::npos)
      return Status::Errorf("merge {} \"{}\" is not two tokens separated by a space; the vocabulary is damaged", rank,
                            line);
    const std::string_view left = std::string_view(line).substr(0, space);
    const std::string_view right = std::string_view(line).substr(space + 1);
    joined.assign(left);
    joined += right;
    const int32_t l = token_id(left), r = token_id(right), result = token_id(joined);
    const std::pair<std::string_view, int32_t> parts[] = {{left, l}, {right, r}, {joined, result}};
    for (const auto& [spelling, id] : parts) {
      if (id < 0)
        return Status::Errorf("merge {} \"{}\" names \"{}\", which is not a token of the vocabulary; the vocabulary is damaged",
                              rank, line, spelling);
    }
    const uint64_t pair = key(l, r);
    size_t i = m.home(pair);
    while (m.slots_[i].pair != kEmpty && m.slots_[i].pair != pair) i = (i + 1) & (capacity - 1);
    if (m.slots_[i].pair == kEmpty) m.slots_[i] = {pair, static_cast<int32_t>(rank), result};  // the first of duplicates wins
  }
  return m;
}

const BpeMerges::Slot* BpeMerges::find(uint64_t pair) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = home(pair);; i = (i + 1) & (slots_.size() - 1)) {
    if (slots_[i].pair == pair) return &slots_[i];
    if (slots_[i].pair == kEmpty) return nullptr;
  }
}

std::vector<int32_t> BpeMerges::merge(std::vector<int32_t> symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return symbols;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Pair {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id;
  };
  // Lowest rank first; on equal ranks the leftmost pair.
  auto later = [](const Pair& a, const Pair& b) { return a.rank > b.rank || (a.rank == b.rank && a.left > b.left); };
  std::priority_queue<Pair, std::vector<Pair>, decltype(later)> queue(later);
  auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0 || symbols[left] < 0 || symbols[right] < 0) return;
    if (const Slot* s = find(key(symbols[left], symbols[right]))) queue.push({s->rank, left, right, symbols[left], symbols[right]});
  };
  for (int i = 1; i < n; ++i) try_pair(i - 1, i);

  constexpr int32_t kMergedAway = -2;
  while (!queue.empty()) {
    const Pair p = queue.top();
    queue.pop();
    // Stale when either side has changed since the pair was queued.
    if (next[p.left] != p.right || symbols[p.left] != p.left_id || symbols[p.right] != p.right_id) continue;
    symbols[p.left] = find(key(p.left_id, p.right_id))->result;
    symbols[p.right] = kMergedAway;
    next[p.left] = next[p.right];
    if (next[p.right] >= 0) prev[next[p.right]] = p.left;
    try_pair(prev[p.left], p.left);
    try_pair(p.left, next[p.left]);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(symbols[i]);
  return out;
}

}  // namespace ll::text
