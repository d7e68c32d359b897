#include "reward/top_level_split.h"

namespace aha::reward {
namespace {

bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }

}  // namespace

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string trimmed_spaces(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split_top_level(std::string_view s, const SeparatorAt& separator_at) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) {
      depth += s[i + 1] == '{' ? 1 : -1;
      ++i;
      continue;
    }
    if (is_open(s[i])) {
      ++depth;
      continue;
    }
    if (is_close(s[i])) {
      --depth;
      continue;
    }
    if (depth != 0) continue;
    size_t length = separator_at(s, i);
    if (length == 0) continue;
    parts.push_back(trimmed_spaces(s.substr(start, i - start)));
    start = i + length;
    i = start - 1;
  }
  parts.push_back(trimmed_spaces(s.substr(start)));
  return parts;
}

std::vector<std::string> split_top_level(std::string_view s, std::string_view separator) {
  return split_top_level(s, [separator](std::string_view text, size_t i) -> size_t {
    if (text.compare(i, separator.size(), separator) != 0) return 0;
    size_t after = i + separator.size();
    if (is_ascii_letter(separator.back()) && after < text.size() && is_ascii_letter(text[after])) return 0;
    return separator.size();
  });
}

}  // namespace aha::reward
