#include "policy/tokenizer/byte_level.h"

#include <array>

#include "policy/tokenizer/tokenizer_utf8.h"

namespace aha::byte_level {
namespace {

struct Alphabet {
  std::array<std::string, 256> char_of_byte;
  std::array<int16_t, 512> byte_of_code_point;  // -1 where no byte maps to it

  Alphabet() {
    byte_of_code_point.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      int cp = printable(b) ? b : next++;
      utf8::append_char(char_of_byte[b], static_cast<uint32_t>(cp));
      byte_of_code_point[cp] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet instance;
  return instance;
}

}  // namespace

const std::string& char_for_byte(uint8_t b) { return alphabet().char_of_byte[b]; }

std::string from_bytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) out += alphabet().char_of_byte[b];
  return out;
}

std::optional<std::string> to_bytes(std::string_view text) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(text.size());
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    size_t length;
    int32_t cp = utf8::decode_char(p, end, length);
    if (cp < 0 || cp >= 512 || a.byte_of_code_point[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(a.byte_of_code_point[cp]));
    p += length;
  }
  return out;
}

}  // namespace aha::byte_level
