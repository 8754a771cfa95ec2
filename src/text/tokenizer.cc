#include "text/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <queue>
#include <tuple>

#include "text/byte_level.h"

namespace ll::text {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence a lead byte announces; stray continuation bytes count as 1,
// as in llama.cpp, so malformed input still splits into symbols (and then into byte tokens).
size_t utf8_len(uint8_t lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte of a "<0xNN>" spelling, or -1.
int byte_of(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  const int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

Result<Tokenizer> Tokenizer::create(Vocab vocab) {
  const bool spm = vocab.model == "llama";
  if (!spm && vocab.model != "gpt2")
    return Status::Errorf("tokenizer model '{}' is not supported (only 'llama', SentencePiece BPE, and 'gpt2', byte-level BPE)",
                          vocab.model);
  const size_t n = vocab.tokens.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) return Status::Errorf("vocabulary size {} is not usable", n);
  if (vocab.scores.size() != n || vocab.types.size() != n)
    return Status::Errorf("vocabulary has {} tokens but {} scores and {} token types", n, vocab.scores.size(),
                          vocab.types.size());
  for (size_t i = 0; i < n; ++i) {
    // NaN would break the ordering of the merge queue.
    if (std::isnan(vocab.scores[i])) return Status::Errorf("token {} has a NaN score", i);
  }
  // Byte-level BPE vocabularies may have no unknown token; the others below are optional.
  const std::tuple<const char*, int32_t, bool> ids[] = {
      {"bos", vocab.bos, true},       {"eos", vocab.eos, true},        {"unknown", vocab.unk, spm},
      {"end-of-turn", vocab.eot, false}, {"end-of-message", vocab.eom, false}, {"padding", vocab.pad, false}};
  for (const auto& [what, id, required] : ids) {
    if (id == -1 && !required) continue;
    if (id < 0 || static_cast<size_t>(id) >= n)
      return Status::Errorf("{} token id {} is outside the vocabulary of {} tokens", what, id, n);
  }
  std::optional<PreTokenizer> pre;
  if (!spm) {
    LL_ASSIGN_OR_RETURN(pre, PreTokenizer::create(vocab.pre));
  }
  Tokenizer t(std::move(vocab));
  if (!spm) {
    t.pre_ = std::move(pre);
    LL_ASSIGN_OR_RETURN(t.merges_, BpeMerges::create(t.vocab_.merges, [&t](std::string_view s) { return t.find(s); }));
    for (int b = 0; b < 256; ++b) t.byte_ids_[b] = t.find(bytes_to_byte_level(std::string(1, static_cast<char>(b))));
  }
  return t;
}

Tokenizer::Tokenizer(Vocab v) : vocab_(std::move(v)) {
  const auto n = static_cast<int32_t>(vocab_.tokens.size());
  index_.reserve(vocab_.tokens.size());
  // A later duplicate spelling wins, as in llama.cpp.
  for (int32_t id = 0; id < n; ++id) index_.insert_or_assign(vocab_.tokens[id], id);

  // End of generation as llama.cpp decides it; the tokens found by spelling become control
  // tokens (printed as nothing) if the vocabulary said otherwise.
  for (int32_t id : {vocab_.eos, vocab_.eot, vocab_.eom}) {
    if (id >= 0) eog_.insert(id);
  }
  for (std::string_view spelling : {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
                                    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>",
                                    "<end_of_utterance>"}) {
    const int32_t id = find(spelling);
    if (id < 0) continue;
    eog_.insert(id);
    vocab_.types[id] = TokenType::Control;
  }

  // SentencePiece byte fallback: "<0xNN>", else a token spelled as the bare byte, else <unk>.
  for (int b = 0; b < 256; ++b) {
    int32_t id = find(fmt::format("<0x{:02X}>", b));
    if (id < 0) id = find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = id >= 0 ? id : vocab_.unk;
  }

  for (int32_t id = 0; id < n; ++id) {
    const TokenType type = vocab_.types[id];
    const bool special = type == TokenType::Control || type == TokenType::UserDefined || type == TokenType::Unknown;
    if (special && !vocab_.tokens[id].empty()) special_.push_back(id);
  }
  std::stable_sort(special_.begin(), special_.end(),
                   [&](int32_t a, int32_t b) { return vocab_.tokens[a].size() > vocab_.tokens[b].size(); });
}

int32_t Tokenizer::find(std::string_view text) const {
  auto it = index_.find(text);
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);

  // Split out special tokens, longest spelling first (llama.cpp's partition order).
  struct Fragment {
    std::string_view text;
    int32_t token = -1;
  };
  std::vector<Fragment> fragments;
  if (!text.empty()) fragments.push_back({text});
  for (int32_t id : special_) {
    if (!parse_special && vocab_.types[id] != TokenType::UserDefined) continue;
    const std::string& spelling = vocab_.tokens[id];
    std::vector<Fragment> next;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = 0;
      for (size_t hit; (hit = f.text.find(spelling, pos)) != std::string_view::npos; pos = hit + spelling.size()) {
        if (hit > pos) next.push_back({f.text.substr(pos, hit - pos)});
        next.push_back({{}, id});
      }
      if (pos < f.text.size()) next.push_back({f.text.substr(pos)});
    }
    fragments = std::move(next);
  }

  // The dummy-prefix space goes before text that starts the input or follows a special token.
  bool after_special = true;
  std::string escaped;
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    if (byte_level()) {
      encode_bpe(f.text, out);
      continue;
    }
    escaped.clear();
    if (vocab_.add_space_prefix && after_special) escaped += kSpaceMarker;
    for (char c : f.text) {
      if (c == ' ') escaped += kSpaceMarker;
      else escaped += c;
    }
    encode_spm(escaped, out);
    after_special = false;
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<int32_t> symbols;
  for (std::string_view word : pre_->split(text)) {
    if (pre_->traits().ignore_merges) {
      const int32_t whole = find(bytes_to_byte_level(word));
      if (whole >= 0) {
        out.push_back(whole);
        continue;
      }
    }
    // Each byte is one character of the byte-level spelling; one that is no token is dropped,
    // as llama.cpp does.
    symbols.clear();
    for (char c : word) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    for (int32_t id : merges_->merge(symbols)) {
      if (id >= 0) out.push_back(id);
    }
  }
}

void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  // Symbols form a linked list over `text`; merging grows the left symbol and empties the right.
  struct Symbol {
    size_t start, len;
    int prev, next;
  };
  struct Pair {
    float score;
    int left, right;
    size_t len;  // left.len + right.len when queued; a mismatch later means the pair is stale
  };
  // Highest score first; on equal scores the leftmost pair.
  auto lower = [](const Pair& a, const Pair& b) { return a.score < b.score || (a.score == b.score && a.left > b.left); };
  std::priority_queue<Pair, std::vector<Pair>, decltype(lower)> queue(lower);

  std::vector<Symbol> symbols;
  for (size_t at = 0; at < text.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[at])), text.size() - at);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({at, len, index - 1, at + len == text.size() ? -1 : index + 1});
    at += len;
  }
  auto try_pair = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const size_t len = symbols[left].len + symbols[right].len;
    const int32_t id = find(text.substr(symbols[left].start, len));
    if (id >= 0) queue.push({vocab_.scores[id], left, right, len});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_pair(i - 1, i);

  while (!queue.empty()) {
    const Pair p = queue.top();
    queue.pop();
    Symbol& left = symbols[p.left];
    Symbol& right = symbols[p.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != p.len) continue;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = p.left;
    try_pair(left.prev, p.left);
    try_pair(p.left, left.next);
  }

  // Every merged symbol is a token; a single character that is not falls back to bytes.
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    const std::string_view s = text.substr(symbols[i].start, symbols[i].len);
    const int32_t id = find(s);
    if (id >= 0) {
      out.push_back(id);
    } else {
      for (char c : s) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    }
  }
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  const std::string& text = vocab_.tokens[id];
  if (byte_level()) {
    switch (vocab_.types[id]) {
      case TokenType::Normal:
        return byte_level_to_bytes(text);
      case TokenType::UserDefined:
        return text;
      default:  // Control, Unknown, Unused, Undefined and Byte print nothing (llama.cpp without `special`).
        return {};
    }
  }
  switch (vocab_.types[id]) {
    case TokenType::Normal: {
      std::string out;
      for (size_t at = 0; at < text.size();) {
        if (text.compare(at, kSpaceMarker.size(), kSpaceMarker) == 0) {
          out += ' ';
          at += kSpaceMarker.size();
        } else {
          out += text[at++];
        }
      }
      return out;
    }
    case TokenType::Byte: {
      const int b = byte_of(text);
      return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
    }
    case TokenType::UserDefined:
      return text;
    default:  // Control, Unknown, Unused, Undefined print nothing (llama.cpp without `special`).
      return {};
  }
}

std::string Detokenizer::push(int32_t id) {
  std::string piece = tok_.piece(id);
  const bool after_bos = prev_ == tok_.vocab().bos;
  prev_ = id;
  if (tok_.byte_level()) {
    pending_ += piece;
    return drain(false);
  }
  if (after_bos && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  if (piece.size() == 1) {
    const auto c = static_cast<unsigned char>(piece[0]);
    const bool space = c == ' ' || (c >= '\t' && c <= '\r');
    if ((c < 0x20 || c == 0x7F) && !space) return {};
  }
  pending_ += piece;
  return drain(false);
}

std::string Detokenizer::flush() { return drain(true); }

std::string Detokenizer::drain(bool final) {
  std::string out;
  const std::string& p = pending_;
  size_t i = 0;
  while (i < p.size()) {
    const auto b = static_cast<uint8_t>(p[i]);
    if (b < 0x80) {
      out += p[i++];
      continue;
    }
    // Well-formed sequences (Unicode table 3-7): the second byte's range depends on the lead.
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;  // bytes that are valid so far, lead included
    while (k <= need && i + k < p.size()) {
      const auto c = static_cast<uint8_t>(p[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
      ++k;
    }
    if (k == need + 1) {
      out.append(p, i, k);
    } else if (i + k == p.size() && !final) {
      break;  // a character still arriving
    } else {
      out += kReplacement;
    }
    i += k;
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace ll::text
