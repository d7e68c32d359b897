#include "reward/math_answer.h"

#include <cctype>

namespace aha::reward {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// At text[pos] (just after "\boxed"), reads the argument: {balanced} or one token.
// Returns false when it is unterminated.
bool read_box_argument(std::string_view text, size_t pos, std::string& out) {
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos >= text.size()) return false;
  if (text[pos] == '{') {
    int depth = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size()) {  // \{ and \} do not count
        ++i;
        continue;
      }
      if (text[i] == '{') ++depth;
      if (text[i] == '}' && --depth == 0) {
        out = trim(text.substr(pos + 1, i - pos - 1));
        return true;
      }
    }
    return false;
  }
  // "\boxed 5" / "\boxed5": one token of digits, letters or a dot.
  size_t end = pos;
  while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == pos) return false;
  out = std::string(text.substr(pos, end - pos));
  return true;
}

}  // namespace

std::vector<std::string> extract_boxed(std::string_view text) {
  std::vector<std::string> boxes;
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
    std::string content;
    if (read_box_argument(text, after, content)) boxes.push_back(std::move(content));
    pos = after;
  }
  return boxes;
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
    auto boxes = extract_boxed(*tagged);
    if (!boxes.empty()) return boxes.back();
    return tagged;
  }
  auto boxes = extract_boxed(completion);
  if (boxes.empty()) return std::nullopt;
  return boxes.back();
}

std::string extract_gold_answer(std::string_view gold) {
  size_t hashes = gold.rfind("####");
  if (hashes != std::string_view::npos) return trim(gold.substr(hashes + 4));
  auto boxes = extract_boxed(gold);
  if (!boxes.empty()) return boxes.back();
  return trim(gold);
}

}  // namespace aha::reward
