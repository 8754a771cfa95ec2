#include "text/byte_level.h"

#include <array>
#include <cstdint>

namespace ll::text {
namespace {

bool stands_for_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct Tables {
  std::array<std::string, 256> spelling;  // UTF-8 of each byte's code point
  std::array<int, 324> byte_of;           // code point (< 324) -> byte, or -1
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    t.byte_of.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = stands_for_itself(b) ? b : next++;
      t.byte_of[cp] = b;
      std::string& s = t.spelling[b];
      if (cp < 0x80) {
        s = static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    return t;
  }();
  return t;
}

}  // namespace

std::string bytes_to_byte_level(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.spelling[static_cast<uint8_t>(c)];
  return out;
}

std::string byte_level_to_bytes(std::string_view spelling) {
  const Tables& t = tables();
  std::string out;
  out.reserve(spelling.size());
  for (size_t i = 0; i < spelling.size();) {
    const auto b0 = static_cast<uint8_t>(spelling[i]);
    // Every byte's code point is below U+0800: one or two UTF-8 bytes.
    if (b0 < 0x80 && t.byte_of[b0] >= 0) {
      out += static_cast<char>(t.byte_of[b0]);
      ++i;
      continue;
    }
    if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < spelling.size()) {
      const auto b1 = static_cast<uint8_t>(spelling[i + 1]);
      const int cp = ((b0 & 0x1F) << 6) | (b1 & 0x3F);
      if ((b1 & 0xC0) == 0x80 && cp < static_cast<int>(t.byte_of.size()) && t.byte_of[cp] >= 0) {
        out += static_cast<char>(t.byte_of[cp]);
        i += 2;
        continue;
      }
    }
    out += spelling[i++];
  }
  return out;
}

}  // namespace ll::text
