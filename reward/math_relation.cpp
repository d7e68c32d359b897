#include "reward/math_relation.h"

#include <algorithm>

#include "reward/math_expression.h"
#include "reward/top_level_split.h"

namespace aha::reward {
bool is_variable_name(const std::string& s) {
  if (s.empty()) return false;
  if (s.size() == 1) return is_ascii_letter(s[0]);
  if (is_ascii_letter(s[0]) && s[1] == '_') return true;
  return s[0] == '\\' && s.size() > 1;  // \theta
}

bool is_answer_label(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {  // skip a subscript: _{...} or one character
      if (i + 1 < s.size() && s[i + 1] == '{') {
        size_t close = s.find('}', i);
        if (close == std::string::npos) return false;
        i = close;
      } else {
        ++i;
      }
      continue;
    }
    if ((s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.') return false;
  }
  return true;
}

Relation split_relation(std::string_view s) {
  Relation r;
  r.parts = split_top_level(s, [&r](std::string_view text, size_t i) -> size_t {
    if (text.compare(i, 7, "\\approx") == 0 && !(i + 7 < text.size() && is_ascii_letter(text[i + 7]))) {
      r.ops.emplace_back("~");
      return 7;
    }
    if (i + 1 < text.size() && text[i + 1] == '=' && (text[i] == '<' || text[i] == '>' || text[i] == '!')) {
      r.ops.emplace_back(text.substr(i, 2));
      return 2;
    }
    if (text[i] == '<' || text[i] == '>' || text[i] == '=') {
      r.ops.emplace_back(text.substr(i, 1));
      return 1;
    }
    return 0;
  });
  return r;
}

void canonical_relation(Relation& r) {
  for (size_t k = 0; k < r.ops.size(); ++k) {
    if (r.ops[k] != "~") continue;
    Relation before;
    before.parts.assign(r.parts.begin(), r.parts.begin() + static_cast<long>(k) + 1);
    before.ops.assign(r.ops.begin(), r.ops.begin() + static_cast<long>(k));
    if (k == 0 && is_variable_name(r.parts[0])) {
      before.parts.push_back(r.parts[1]);
      before.ops.push_back("=");
    }
    r = std::move(before);
    break;
  }
  bool all_equal = !r.ops.empty(), all_greater = !r.ops.empty();
  for (auto& op : r.ops) {
    all_equal = all_equal && op == "=";
    all_greater = all_greater && (op == ">" || op == ">=");
  }
  if (r.ops.empty()) return;
  // A computation written out, "\frac{1}{2} \cdot \frac{20}{9} = \frac{10}{9}": its result.
  if (all_equal && r.parts.size() >= 2) {
    auto first = MathExpression::parse(r.parts[0]), last = MathExpression::parse(r.parts.back());
    if (first && first->variables().empty() && last && last->variables().empty())
      r.parts = {r.parts.back()}, r.ops.clear();
  }
  if (all_equal && r.parts.size() > 2) {
    if (is_answer_label(r.parts[0]))
      r.parts = {r.parts.front(), r.parts.back()};
    else
      r.parts = {r.parts.back()}, r.ops.clear();
    if (r.parts.size() == 2) r.ops = {"="};
  }
  if (all_greater) {
    std::reverse(r.parts.begin(), r.parts.end());
    std::reverse(r.ops.begin(), r.ops.end());
    for (auto& op : r.ops) op = op == ">" ? "<" : "<=";
  }
}

std::string relation_as_interval(const Relation& r) {
  for (auto& op : r.ops)
    if (op != "<" && op != "<=") return "";
  auto open = [](const std::string& op) { return op == "<" ? "(" : "["; };
  auto close = [](const std::string& op) { return op == "<" ? ")" : "]"; };
  if (r.parts.size() == 3 && is_answer_label(r.parts[1]))
    return open(r.ops[0]) + r.parts[0] + "," + r.parts[2] + close(r.ops[1]);
  if (r.parts.size() == 2 && is_answer_label(r.parts[0]) && !is_answer_label(r.parts[1]))
    return "(-\\infty," + r.parts[1] + close(r.ops[0]);
  if (r.parts.size() == 2 && is_answer_label(r.parts[1]) && !is_answer_label(r.parts[0]))
    return open(r.ops[0]) + r.parts[0] + ",\\infty)";
  return "";
}

}  // namespace aha::reward
