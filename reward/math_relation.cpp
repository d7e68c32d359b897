#include "reward/math_relation.h"

#include <algorithm>

#include "reward/math_expression.h"

namespace aha::reward {
namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }

std::string trimmed(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

bool is_variable_name(const std::string& s) {
  if (s.empty()) return false;
  if (s.size() == 1) return is_letter(s[0]);
  if (is_letter(s[0]) && s[1] == '_') return true;
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
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) {
      depth += s[i + 1] == '{' ? 1 : -1;
      ++i;
      continue;
    }
    if (is_open(s[i])) ++depth;
    if (is_close(s[i])) --depth;
    if (depth != 0) continue;
    std::string_view op;  // a view, not a std::string: GCC 12 warns falsely on the latter
    size_t length = 0;
    if (s.compare(i, 7, "\\approx") == 0 && !(i + 7 < s.size() && is_letter(s[i + 7]))) {
      op = "~", length = 7;
    } else if (i + 1 < s.size() && s[i + 1] == '=' && (s[i] == '<' || s[i] == '>' || s[i] == '!')) {
      op = s.substr(i, 2), length = 2;
    } else if (s[i] == '<' || s[i] == '>' || s[i] == '=') {
      op = s.substr(i, 1), length = 1;
    }
    if (length == 0) continue;
    r.parts.push_back(trimmed(s.substr(start, i - start)));
    r.ops.emplace_back(op);
    start = i + length;
    i = start - 1;
  }
  r.parts.push_back(trimmed(s.substr(start)));
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
