#include "reward/math_answer.h"

#include <cctype>
#include <vector>

namespace aha::reward {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// For each '{' of text, the index of its closing '}', else npos; \{ and \} do not count (a
// backslash escapes the character after it). One pass, so that reading every box argument,
// nested boxes included, stays linear in the text's length.
std::vector<size_t> match_braces(std::string_view text) {
  std::vector<size_t> match(text.size(), std::string_view::npos), open;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '{') {
      open.push_back(i);
    } else if (text[i] == '}' && !open.empty()) {
      match[open.back()] = i;
      open.pop_back();
    }
  }
  return match;
}

// Calls found(content_begin, content_end) for each terminated \boxed / \fbox argument, in
// order: {balanced} or one token ("\boxed 5", "\boxed5": digits, letters or a dot).
template <typename Found>
void for_each_box(std::string_view text, Found&& found) {
  if (text.find('\\') == std::string_view::npos) return;
  std::vector<size_t> match;  // made on the first braced box
  size_t pos = 0;
  while ((pos = text.find('\\', pos)) != std::string_view::npos) {
    size_t after = 0;
    if (text.compare(pos, 6, "\\boxed") == 0)
      after = pos + 6;
    else if (text.compare(pos, 5, "\\fbox") == 0)
      after = pos + 5;
    if (after == 0 || (after < text.size() && std::isalpha(static_cast<unsigned char>(text[after])))) {
      ++pos;  // not a box, or a longer command such as \boxedfoo
      continue;
    }
    size_t arg = after;
    while (arg < text.size() && text[arg] == ' ') ++arg;
    if (arg < text.size() && text[arg] == '{') {
      if (match.empty()) match = match_braces(text);
      if (match[arg] != std::string_view::npos) found(arg + 1, match[arg]);
    } else {
      size_t end = arg;
      while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '.'))
        ++end;
      if (end > arg) found(arg, end);
    }
    pos = after;
  }
}

}  // namespace

std::vector<std::string> extract_boxed(std::string_view text) {
  std::vector<std::string> boxes;
  for_each_box(text, [&](size_t b, size_t e) { boxes.push_back(trim(text.substr(b, e - b))); });
  return boxes;
}

std::optional<std::string> extract_last_boxed(std::string_view text) {
  size_t begin = 0, end = 0;
  bool any = false;
  for_each_box(text, [&](size_t b, size_t e) {
    begin = b, end = e;
    any = true;
  });
  if (!any) return std::nullopt;
  return trim(text.substr(begin, end - begin));
}

std::optional<std::string> extract_answer_tag(std::string_view text) {
  size_t open = text.rfind("<answer>");
  if (open == std::string_view::npos) return std::nullopt;
  size_t start = open + 8;
  size_t close = text.find("</answer>", start);
  if (close == std::string_view::npos) return std::nullopt;
  return trim(text.substr(start, close - start));
}

std::optional<std::string> extract_final_answer(std::string_view completion) {
  if (auto tagged = extract_answer_tag(completion)) {
    if (auto boxed = extract_last_boxed(*tagged)) return boxed;
    return tagged;
  }
  return extract_last_boxed(completion);
}

std::string extract_gold_answer(std::string_view gold) {
  size_t hashes = gold.rfind("####");
  if (hashes != std::string_view::npos) return trim(gold.substr(hashes + 4));
  if (auto boxed = extract_last_boxed(gold)) return *boxed;
  return trim(gold);
}

}  // namespace aha::reward
