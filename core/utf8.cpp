#include "core/utf8.h"

namespace aha::utf8 {
namespace {

// For a lead byte: the character's length (0: not a lead byte) and the range allowed for the
// second byte, which rules out overlong forms, surrogates and code points above U+10FFFF.
struct LeadInfo {
  int length;
  uint8_t second_min, second_max;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from p (at most `available`) continue a character that starts with a
// lead byte of `info`, counting the lead byte.
int valid_prefix(const uint8_t* p, size_t available, LeadInfo info) {
  int n = 1;
  while (n < info.length && static_cast<size_t>(n) < available) {
    uint8_t c = p[n];
    bool ok = n == 1 ? (c >= info.second_min && c <= info.second_max) : (c >= 0x80 && c <= 0xBF);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

int32_t decode_char(const char* p, const char* end, size_t& length) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  length = 1;
  if (u[0] < 0x80) return u[0];
  LeadInfo info = lead_info(u[0]);
  if (info.length == 0) return -1;
  if (valid_prefix(u, static_cast<size_t>(end - p), info) != info.length) return -1;
  length = static_cast<size_t>(info.length);
  if (info.length == 2) return ((u[0] & 0x1F) << 6) | (u[1] & 0x3F);
  if (info.length == 3) return ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
  return ((u[0] & 0x07) << 18) | ((u[1] & 0x3F) << 12) | ((u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

void append_char(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid(std::string_view bytes) {
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    if (u[i] < 0x80) {  // the common case, without the table lookup
      ++i;
      continue;
    }
    LeadInfo info = lead_info(u[i]);
    if (info.length == 0 || valid_prefix(u + i, bytes.size() - i, info) != info.length) return false;
    i += static_cast<size_t>(info.length);
  }
  return true;
}

std::string lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    LeadInfo info = lead_info(u[i]);
    int n = info.length == 0 ? 0 : valid_prefix(u + i, bytes.size() - i, info);
    if (info.length != 0 && n == info.length) {
      out.append(bytes.data() + i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out.append("\xEF\xBF\xBD");
      i += n == 0 ? 1 : static_cast<size_t>(n);
    }
  }
  return out;
}

size_t incomplete_tail_length(std::string_view bytes) {
  const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t size = bytes.size();
  // A lead byte at most 3 bytes from the end, followed only by valid continuation bytes.
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    size_t start = size - back;
    LeadInfo info = lead_info(u[start]);
    if (info.length == 0 && u[start] >= 0x80 && u[start] <= 0xBF) continue;  // continuation
    if (info.length <= static_cast<int>(back)) return 0;  // ASCII, invalid, or complete
    return valid_prefix(u + start, back, info) == static_cast<int>(back) ? back : 0;
  }
  return 0;
}

}  // namespace aha::utf8
