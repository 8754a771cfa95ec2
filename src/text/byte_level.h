#pragma once
// GPT-2's byte-to-unicode spelling of byte-level BPE tokens: every byte is one printable
// code point (printable Latin-1 bytes stand for themselves, the others for U+0100 onwards).
#include <string>
#include <string_view>

namespace ll::text {

std::string bytes_to_byte_level(std::string_view bytes);
// The inverse; a code point that stands for no byte is kept as it is spelled.
std::string byte_level_to_bytes(std::string_view spelling);

}  // namespace ll::text
