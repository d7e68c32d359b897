#include "jinja/python_str.h"

#include "core/error.h"

namespace aha::jinja {

bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// str.strip/lstrip/rstrip: whitespace, or the characters of `chars` when given.
std::string strip(const std::string& text, const Value& chars, bool left, bool right, const std::string& where) {
  std::u32string s = to_code_points(text);
  std::u32string set;
  const bool whitespace = chars.is_undefined() || chars.is_none();
  if (!whitespace) {
    if (!chars.is_string()) throw Error(where + ": strip characters must be a string, not " + chars.type_name());
    set = to_code_points(chars.as_string());
  }
  auto strippable = [&](char32_t c) { return whitespace ? is_python_space(c) : set.find(c) != std::u32string::npos; };
  size_t begin = 0, end = s.size();
  if (left)
    while (begin < end && strippable(s[begin])) ++begin;
  if (right)
    while (end > begin && strippable(s[end - 1])) --end;
  return to_utf8(s.substr(begin, end - begin));
}

std::string require_string(const Value& v, const std::string& what, const std::string& where) {
  if (!v.is_string()) throw Error(where + ": " + what + " must be a string, not " + v.type_name());
  return v.as_string();
}

int64_t require_int(const Value& v, const std::string& what, const std::string& where) {
  if (v.kind() != Value::Kind::Int) throw Error(where + ": " + what + " must be an integer, not " + v.type_name());
  return v.as_int();
}

std::vector<std::string> split(const std::string& text, const Value& separator, int64_t max_split,
                               const std::string& where) {
  std::vector<std::string> parts;
  if (separator.is_undefined() || separator.is_none()) {
    const std::u32string s = to_code_points(text);
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_python_space(s[i])) ++i;
      if (i >= s.size()) break;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        size_t end = s.size();
        while (end > i && is_python_space(s[end - 1])) --end;
        parts.push_back(to_utf8(s.substr(i, end - i)));
        break;
      }
      size_t j = i;
      while (j < s.size() && !is_python_space(s[j])) ++j;
      parts.push_back(to_utf8(s.substr(i, j - i)));
      i = j;
    }
    return parts;
  }
  const std::string sep = require_string(separator, "split's separator", where);
  if (sep.empty()) throw Error(where + ": split: empty separator");
  size_t start = 0;
  while (true) {
    if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) break;
    const size_t at = text.find(sep, start);
    if (at == std::string::npos) break;
    parts.push_back(text.substr(start, at - start));
    start = at + sep.size();
  }
  parts.push_back(text.substr(start));
  return parts;
}

std::string replace(const std::string& text, const std::string& old, const std::string& replacement, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts the replacement between every character
    const std::u32string s = to_code_points(text);
    int64_t done = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      if (i < s.size()) out += to_utf8(s.substr(i, 1));
    }
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = text.find(old, start);
    if (at == std::string::npos) break;
    out += text.substr(start, at - start) + replacement;
    start = at + old.size();
    ++done;
  }
  return out + text.substr(start);
}

std::string change_case(const std::string& text, bool upper) {
  std::string out = text;  // ASCII letters: chat templates apply these to role names
  for (char& c : out)
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    else if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace aha::jinja
