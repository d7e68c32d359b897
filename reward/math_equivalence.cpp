#include "reward/math_equivalence.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "reward/deadline.h"
#include "reward/latex_normalizer.h"
#include "reward/math_expression.h"

namespace aha::reward {
namespace {

constexpr int kMaxDepth = 4;

bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string trimmed(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && s[b] == ' ') ++b;
  while (e > b && s[e - 1] == ' ') --e;
  return std::string(s.substr(b, e - b));
}

// Splits at `separator` where no bracket is open (\{ \} count as brackets too).
std::vector<std::string> split_top_level(std::string_view s, std::string_view separator) {
  std::vector<std::string> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '{' || s[i + 1] == '}')) {
      depth += s[i + 1] == '{' ? 1 : -1;
      ++i;
      continue;
    }
    if (is_open(s[i]))
      ++depth;
    else if (is_close(s[i]))
      --depth;
    else if (depth == 0 && s.compare(i, separator.size(), separator) == 0 &&
             !(is_letter(separator.back()) && i + separator.size() < s.size() &&
               is_letter(s[i + separator.size()]))) {
      parts.push_back(trimmed(s.substr(start, i - start)));
      start = i + separator.size();
      i = start - 1;
    }
  }
  parts.push_back(trimmed(s.substr(start)));
  return parts;
}

// True when s[0] opens a bracket that closes at the last character.
bool outer_brackets(const std::string& s) {
  if (s.size() < 2 || !is_open(s[0]) || !is_close(s.back())) return false;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (is_open(s[i])) ++depth;
    if (is_close(s[i]) && --depth == 0 && i + 1 != s.size()) return false;
  }
  return depth == 0;
}

// The deepest bracket nesting of s, counting up to just past kMaxAnswerNesting (an unmatched
// closer does not go below 0).
int bracket_depth(std::string_view s) {
  int depth = 0, deepest = 0;
  for (char c : s) {
    if (is_open(c)) {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxAnswerNesting) break;
    } else if (is_close(c) && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// "\{1, 2\}" -> "1, 2"; anything else unchanged, with is_set false.
std::string set_content(const std::string& s, bool& is_set) {
  is_set = s.size() >= 4 && starts_with(s, "\\{") && s.compare(s.size() - 2, 2, "\\}") == 0;
  return is_set ? trimmed(std::string_view(s).substr(2, s.size() - 4)) : s;
}

// Expands the first top-level \pm (or \mp) into two alternatives, recursively; at most
// kMaxPlusMinus of them (2^k alternatives), more is left unexpanded (and will not parse).
constexpr int kMaxPlusMinus = 3;

std::vector<std::string> expand_plus_minus(const std::string& s, int depth = 0) {
  for (std::string_view op : {"\\pm", "\\mp"}) {
    auto parts = split_top_level(s, op);
    if (parts.size() < 2 || depth >= kMaxPlusMinus) continue;
    std::string rest;
    for (size_t i = 1; i < parts.size(); ++i) rest += (i > 1 ? std::string(op) : "") + parts[i];
    std::vector<std::string> out;
    for (const char* sign : {"+", "-"}) {
      std::string head = parts[0].empty() ? std::string(sign) : parts[0] + sign;
      for (auto& e : expand_plus_minus(head + "(" + rest + ")", depth + 1)) out.push_back(e);
    }
    return out;
  }
  return {s};
}

// Elements of a list, set or \pm expression: "1 \pm \sqrt{2}, 3" -> 3 elements.
std::vector<std::string> list_elements(const std::string& s) {
  std::vector<std::string> out;
  for (auto& part : split_top_level(s, ","))
    for (auto& e : expand_plus_minus(part)) out.push_back(e);
  return out;
}

// Rows of a matrix, or false when s is not one.
bool matrix_rows(const std::string& s, std::vector<std::vector<std::string>>& rows) {
  for (std::string_view kind : {"pmatrix", "bmatrix", "matrix", "Bmatrix", "vmatrix"}) {
    std::string begin = "\\begin{" + std::string(kind) + "}", end = "\\end{" + std::string(kind) + "}";
    if (!starts_with(s, begin) || s.size() < begin.size() + end.size() ||
        s.compare(s.size() - end.size(), end.size(), end) != 0) {
      continue;
    }
    std::string body = s.substr(begin.size(), s.size() - begin.size() - end.size());
    for (auto& row : split_top_level(body, "\\\\")) {
      if (row.empty()) continue;
      rows.push_back(split_top_level(row, "&"));
    }
    return !rows.empty();
  }
  return false;
}

bool is_word(const std::string& s) {
  int letters = 0;
  for (char c : s) {
    if (is_letter(c))
      ++letters;
    else if (c != ' ')
      return false;
  }
  return letters >= 2;
}

std::string lower_without_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A deterministic value in [0.6, 2.6) for variable `name` at sample point `point`, the same
// for both sides so that equal expressions evaluate equal.
double variable_value(const std::string& name, int point) {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(point * 7919 + 17);
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  return 0.6 + 2.0 * static_cast<double>(h % 1000003) / 1000003.0;
}

// Constants (no variables) must agree to 1e-12 relative: different exact forms ("\sqrt{8}" and
// "2\sqrt{2}") are equal; a decimal approximation of an irrational answer was refused before
// (is_decimal_literal). Expressions with variables are compared at random points, where 1e-9
// leaves room for rounding in longer polynomials.
constexpr double kConstantTolerance = 1e-12, kVariableTolerance = 1e-9;

bool close(double a, double b, double tolerance) {
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  return std::fabs(a - b) <= tolerance * std::max({1e-3, std::fabs(a), std::fabs(b)});
}

bool same_variables(const MathExpression& a, const MathExpression& b) {
  if (a.variables().size() != b.variables().size()) return false;
  for (auto& v : a.variables()) {
    bool found = false;
    for (auto& w : b.variables()) found = found || v == w;
    if (!found) return false;
  }
  return true;
}

std::vector<double> bind(const MathExpression& e, int point) {
  std::vector<double> values;
  for (auto& v : e.variables()) values.push_back(variable_value(v, point));
  return values;
}

// "-0.25", "3.14159": a number written with decimals, which may be a rounded value.
bool is_decimal_literal(std::string_view s) {
  size_t i = !s.empty() && s[0] == '-' ? 1 : 0;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    if (s[i] == '.' && !dot)
      dot = true;
    else if (s[i] >= '0' && s[i] <= '9')
      digits = true;
    else
      return false;
  }
  return digits && dot;
}

// a_decimal / b_decimal: that side is a decimal literal (is_decimal_literal).
bool expressions_equal(const MathExpression& a, const MathExpression& b, bool a_decimal = false,
                       bool b_decimal = false) {
  using Exactness = MathExpression::Exactness;
  Rational ra, rb;
  auto ea = a.exact_value(ra), eb = b.exact_value(rb);
  if (ea == Exactness::exact && eb == Exactness::exact) return ra == rb;
  if (ea == Exactness::overflow || eb == Exactness::overflow) return false;
  // A decimal against an irrational constant is an approximation, never the answer.
  if ((a_decimal && eb == Exactness::inexact && b.variables().empty()) ||
      (b_decimal && ea == Exactness::inexact && a.variables().empty())) {
    return false;
  }
  if (!same_variables(a, b)) return false;
  int points = a.variables().empty() ? 1 : 4;
  int compared = 0;
  for (int p = 0; p < points; ++p) {
    double va = a.evaluate(bind(a, p)), vb = b.evaluate(bind(b, p));
    if (!std::isfinite(va) && !std::isfinite(vb)) continue;  // outside both domains
    if (!close(va, vb, points == 1 ? kConstantTolerance : kVariableTolerance)) return false;
    ++compared;
  }
  return compared >= (points == 1 ? 1 : 3);
}

bool scalars_equal(const std::string& a, bool a_percent, const std::string& b, bool b_percent) {
  if (a == b) return true;
  if (is_word(a) || is_word(b)) return lower_without_spaces(a) == lower_without_spaces(b);
  auto ea = MathExpression::parse(a), eb = MathExpression::parse(b);
  if (!ea || !eb) return false;
  if (expressions_equal(*ea, *eb, is_decimal_literal(a), is_decimal_literal(b))) return true;
  if (a_percent == b_percent) return false;
  // A percentage also equals its number / 100 ("50%" and 0.5).
  auto scaled = MathExpression::parse("(" + (a_percent ? a : b) + ")/100");
  return scaled && expressions_equal(*scaled, a_percent ? *eb : *ea);
}

// (left) - (right) of an equation, or nullopt.
std::optional<MathExpression> equation_difference(const std::vector<std::string>& sides) {
  return MathExpression::parse("(" + sides[0] + ")-(" + sides[1] + ")");
}

bool equations_equal(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto fa = equation_difference(a), fb = equation_difference(b);
  if (!fa || !fb || !same_variables(*fa, *fb) || fa->variables().empty()) return false;
  double ratio = 0;
  int compared = 0;
  for (int p = 0; p < 4; ++p) {
    double va = fa->evaluate(bind(*fa, p)), vb = fb->evaluate(bind(*fb, p));
    if (!std::isfinite(va) || !std::isfinite(vb) || vb == 0 || va == 0) continue;
    if (compared == 0)
      ratio = va / vb;
    else if (!close(va / vb, ratio, kVariableTolerance))
      return false;
    ++compared;
  }
  return compared >= 3;
}

bool is_variable_name(const std::string& s) {
  if (s.empty()) return false;
  if (s.size() == 1) return is_letter(s[0]);
  if (is_letter(s[0]) && s[1] == '_') return true;
  return s[0] == '\\' && s.size() > 1;  // \theta
}

bool compare(const std::string& a, bool ap, const std::string& b, bool bp, int depth);

// Unordered comparison of two collections of the same size.
bool same_multiset(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  for (auto& x : a) {
    bool matched = false;
    for (size_t j = 0; j < b.size() && !matched; ++j) {
      if (!used[j] && compare(x, false, b[j], false, depth + 1)) used[j] = matched = true;
    }
    if (!matched) return false;
  }
  return true;
}

bool compare(const std::string& a, bool ap, const std::string& b, bool bp, int depth) {
  if (a.empty() || b.empty() || depth > kMaxDepth) return false;
  check_deadline();
  if (a == b && ap == bp) return true;
  // Matrices.
  std::vector<std::vector<std::string>> ma, mb;
  bool a_matrix = matrix_rows(a, ma), b_matrix = matrix_rows(b, mb);
  if (a_matrix || b_matrix) {
    if (!a_matrix || !b_matrix || ma.size() != mb.size()) return false;
    for (size_t r = 0; r < ma.size(); ++r) {
      if (ma[r].size() != mb[r].size()) return false;
      for (size_t c = 0; c < ma[r].size(); ++c)
        if (!compare(ma[r][c], false, mb[r][c], false, depth + 1)) return false;
    }
    return true;
  }
  // Unions of intervals or sets.
  auto ua = split_top_level(a, "\\cup"), ub = split_top_level(b, "\\cup");
  if (ua.size() > 1 || ub.size() > 1) return same_multiset(ua, ub, depth);
  // Sets, bare lists and \pm alternatives.
  bool a_set, b_set;
  std::string ca = set_content(a, a_set), cb = set_content(b, b_set);
  auto la = list_elements(ca), lb = list_elements(cb);
  if (a_set || b_set || la.size() > 1 || lb.size() > 1) {
    if (la.size() == 1 && lb.size() == 1) return compare(la[0], ap, lb[0], bp, depth + 1);
    return same_multiset(la, lb, depth);
  }
  // Tuples and intervals: same brackets, same elements in order.
  if (outer_brackets(a) || outer_brackets(b)) {
    auto ta = outer_brackets(a) ? split_top_level(std::string_view(a).substr(1, a.size() - 2), ",")
                                : std::vector<std::string>{};
    auto tb = outer_brackets(b) ? split_top_level(std::string_view(b).substr(1, b.size() - 2), ",")
                                : std::vector<std::string>{};
    if (ta.size() > 1 || tb.size() > 1) {
      if (ta.size() != tb.size() || a.front() != b.front() || a.back() != b.back()) return false;
      for (size_t i = 0; i < ta.size(); ++i)
        if (!compare(ta[i], false, tb[i], false, depth + 1)) return false;
      return true;
    }
    // Multiple choice: "(B)" and "B".
    auto choice = [](const std::string& s) {
      return s.size() == 3 && s[0] == '(' && s[2] == ')' && s[1] >= 'A' && s[1] <= 'Z' ? std::string(1, s[1])
                                                                                       : s;
    };
    if (choice(a) != a || choice(b) != b) return choice(a) == choice(b);
  }
  // Equations.
  auto qa = split_top_level(a, "="), qb = split_top_level(b, "=");
  if (qa.size() > 2 || qb.size() > 2) return false;
  if (qa.size() == 2 && qb.size() == 2) {
    if (compare(qa[0], false, qb[0], false, depth + 1) && compare(qa[1], false, qb[1], false, depth + 1))
      return true;
    return equations_equal(qa, qb);
  }
  if (qa.size() == 2) return is_variable_name(qa[0]) && compare(qa[1], ap, b, bp, depth + 1);
  if (qb.size() == 2) return is_variable_name(qb[0]) && compare(a, ap, qb[1], bp, depth + 1);
  // Number bases: 4210_5 and 4210.
  auto strip_base = [](const std::string& s) {
    size_t underscore = s.rfind('_');
    if (underscore == std::string::npos || underscore == 0) return s;
    for (size_t i = 0; i < s.size(); ++i)
      if (i != underscore && !std::isalnum(static_cast<unsigned char>(s[i]))) return s;
    for (size_t i = underscore + 1; i < s.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return s;
    return std::isdigit(static_cast<unsigned char>(s[0])) ? s.substr(0, underscore) : s;
  };
  std::string sa = strip_base(a), sb = strip_base(b);
  if (sa != a || sb != b) return sa == sb;
  return scalars_equal(a, ap, b, bp);
}

}  // namespace

MathVerdict check_math_answer(std::string_view answer, std::string_view gold) {
  MathVerdict verdict;
  NormalisedAnswer a = normalise_latex(answer), g = normalise_latex(gold);
  if (a.text.empty() || g.text.empty()) return verdict;
  if (a.text == g.text && a.percent == g.percent) {  // identical: equal without parsing
    verdict.equal = true;
    return verdict;
  }
  if (a.text.size() > 2 * g.text.size() + 48) {
    verdict.refusal = "the answer is " + std::to_string(a.text.size()) +
                      " characters long after normalising, more than 2 x gold + 48 = " +
                      std::to_string(2 * g.text.size() + 48);
    return verdict;
  }
  for (auto [text, what] : {std::pair{&a.text, "answer"}, std::pair{&g.text, "gold answer"}}) {
    const int depth = bracket_depth(*text);
    if (depth > kMaxAnswerNesting) {
      verdict.refusal = std::string("the ") + what + "'s brackets nest deeper than " +
                        std::to_string(kMaxAnswerNesting) + " levels";
      return verdict;
    }
  }
  verdict.equal = compare(a.text, a.percent, g.text, g.percent, 0);
  return verdict;
}

bool math_answers_equivalent(std::string_view answer, std::string_view gold) {
  return check_math_answer(answer, gold).equal;
}

}  // namespace aha::reward
