#include "reward/math_equivalence.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "reward/deadline.h"
#include "reward/latex_normalizer.h"
#include "reward/math_expression.h"
#include "reward/math_relation.h"
#include "reward/top_level_split.h"

namespace aha::reward {
namespace {

constexpr int kMaxDepth = 6;  // nesting of structures compared (a set of tuples of ...)

bool is_open(char c) { return c == '(' || c == '[' || c == '{'; }
bool is_close(char c) { return c == ')' || c == ']' || c == '}'; }

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
  return is_set ? trimmed_spaces(std::string_view(s).substr(2, s.size() - 4)) : s;
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

bool is_word(const std::string& s) {
  int letters = 0;
  for (char c : s) {
    if (is_ascii_letter(c))
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

// True when r has a finite decimal form (its reduced denominator divides a power of 10).
bool is_finite_decimal(const Rational& r) {
  __int128 d = r.den;
  while (d % 2 == 0) d /= 2;
  while (d % 5 == 0) d /= 5;
  return d == 1;
}

// a_decimal / b_decimal: that side is a decimal literal (is_decimal_literal), which matches a
// constant within `precision` (relative; 0: only exactly).
bool expressions_equal(const MathExpression& a, const MathExpression& b, double precision, bool a_decimal = false,
                       bool b_decimal = false) {
  using Exactness = MathExpression::Exactness;
  Rational ra, rb;
  auto ea = a.exact_value(ra), eb = b.exact_value(rb);
  if (ea == Exactness::exact && eb == Exactness::exact) {
    if (ra == rb) return true;
    // A decimal approximates only a value that has no finite decimal form (1/12, not 12.5 or
    // 1/4: those it must write exactly).
    const bool approximates = (a_decimal && !is_finite_decimal(rb)) || (b_decimal && !is_finite_decimal(ra));
    return approximates && precision > 0 && close(ra.to_double(), rb.to_double(), precision);
  }
  if (ea == Exactness::overflow || eb == Exactness::overflow) return false;
  // A decimal against a constant: an approximation, equal only within the stated precision.
  if ((a_decimal && b.variables().empty()) || (b_decimal && a.variables().empty())) {
    return precision > 0 && a.variables().empty() && b.variables().empty() &&
           close(a.evaluate({}), b.evaluate({}), precision);
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

bool scalars_equal(const std::string& a, bool a_percent, const std::string& b, bool b_percent, double precision) {
  if (a == b) return true;
  if (is_word(a) || is_word(b)) return lower_without_spaces(a) == lower_without_spaces(b);
  auto ea = MathExpression::parse(a), eb = MathExpression::parse(b);
  if (!ea || !eb) return false;
  if (expressions_equal(*ea, *eb, precision, is_decimal_literal(a), is_decimal_literal(b))) return true;
  if (a_percent == b_percent) return false;
  // A percentage also equals its number / 100 ("50%" and 0.5).
  auto scaled = MathExpression::parse("(" + (a_percent ? a : b) + ")/100");
  return scaled && expressions_equal(*scaled, a_percent ? *eb : *ea, precision, false,
                                     is_decimal_literal(a_percent ? b : a));
}

// (left) - (right) of a relation, or nullopt.
std::optional<MathExpression> relation_difference(const std::string& left, const std::string& right) {
  return MathExpression::parse("(" + left + ")-(" + right + ")");
}

// Two relations "l op r" with the same op: (l - r) of one is a constant multiple of the
// other's at sample points with variables, a positive one for < and <= (so that "-x > -1",
// read as "-1 < -x", equals "x < 1", and "x <= 5" does not equal "x >= 5").
bool relations_proportional(const std::string& la, const std::string& ra, const std::string& lb,
                            const std::string& rb, bool positive_only) {
  auto fa = relation_difference(la, ra), fb = relation_difference(lb, rb);
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
  return compared >= 3 && (!positive_only || ratio > 0);
}

struct Context {
  double precision;     // relative, for decimal literals against constants
  std::string* refusal;  // set when a collection is too large to compare
};

// Refuses (false, with the reason) collections of more than kMaxAnswerElements elements, whose
// unordered comparison would cost their product in element comparisons.
bool within_element_cap(size_t a, size_t b, const Context& c) {
  if (a <= kMaxAnswerElements && b <= kMaxAnswerElements) return true;
  *c.refusal = "a list or set of " + std::to_string(std::max(a, b)) + " elements, more than " +
               std::to_string(kMaxAnswerElements);
  return false;
}

bool compare(const std::string& a, bool ap, const std::string& b, bool bp, int depth, const Context& c);

// Unordered comparison of two collections of the same size.
bool same_multiset(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth,
                   const Context& c) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  for (auto& x : a) {
    bool matched = false;
    for (size_t j = 0; j < b.size() && !matched; ++j) {
      if (!used[j] && compare(x, false, b[j], false, depth + 1, c)) used[j] = matched = true;
    }
    if (!matched) return false;
  }
  return true;
}

// The elements of a without repeats (compared as values).
std::vector<std::string> without_repeats(const std::vector<std::string>& a, int depth, const Context& c) {
  std::vector<std::string> out;
  for (auto& x : a) {
    bool seen = false;
    for (size_t j = 0; j < out.size() && !seen; ++j) seen = compare(x, false, out[j], false, depth + 1, c);
    if (!seen) out.push_back(x);
  }
  return out;
}

// Two collections of several elements are equal as sets: "(3,17), (3,17), (2,5)" lists the
// solutions (2,5) and (3,17). One element against several is never equal ("1, 1" is not "1").
bool same_set(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth, const Context& c) {
  if (!within_element_cap(a.size(), b.size(), c)) return false;
  if (same_multiset(a, b, depth, c)) return true;
  if (a.size() < 2 || b.size() < 2) return false;
  return same_multiset(without_repeats(a, depth, c), without_repeats(b, depth, c), depth, c);
}

bool same_sequence(const std::vector<std::string>& a, const std::vector<std::string>& b, int depth,
                   const Context& c) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!compare(a[i], false, b[i], false, depth + 1, c)) return false;
  return true;
}

// "1000,99" or "0,111" -> "1000.99" / "0.111": one comma between digits, not a thousands
// group (exactly three digits after it, unless the whole part is 0) and not one digit after
// it ("1,2" stays the list 1, 2); else empty.
std::string decimal_comma_reading(const std::string& s) {
  size_t comma = s.find(',');
  if (comma == std::string::npos || s.find(',', comma + 1) != std::string::npos) return "";
  size_t start = !s.empty() && s[0] == '-' ? 1 : 0;
  std::string whole = s.substr(start, comma - start), fraction = s.substr(comma + 1);
  auto digits = [](const std::string& t) {
    return !t.empty() && std::all_of(t.begin(), t.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  if (!digits(whole) || !digits(fraction) || fraction.size() < 2) return "";
  if (fraction.size() == 3 && whole != "0") return "";
  return s.substr(0, comma) + "." + fraction;
}

bool has_top_level_comma(const std::string& s) { return split_top_level(s, ",").size() > 1; }

// Rows of a matrix (pmatrix, bmatrix, array with its column spec, ...; a bracket around the
// environment is dropped), or false when s is not one.
bool matrix_rows(std::string s, std::vector<std::vector<std::string>>& rows) {
  if (s.size() > 2 && (s[0] == '(' || s[0] == '[') && starts_with(std::string_view(s).substr(1), "\\begin") &&
      (s.back() == ')' || s.back() == ']')) {
    s = trimmed_spaces(std::string_view(s).substr(1, s.size() - 2));
  }
  if (!starts_with(s, "\\begin{")) return false;
  for (std::string_view kind : {"pmatrix", "bmatrix", "matrix", "Bmatrix", "vmatrix", "array"}) {
    std::string begin = "\\begin{" + std::string(kind) + "}", end = "\\end{" + std::string(kind) + "}";
    if (!starts_with(s, begin) || s.size() < begin.size() + end.size() ||
        s.compare(s.size() - end.size(), end.size(), end) != 0) {
      continue;
    }
    std::string body = s.substr(begin.size(), s.size() - begin.size() - end.size());
    if (kind == "array" && !body.empty() && body[0] == '{') {  // the column spec {cc}
      size_t close = body.find('}');
      if (close == std::string::npos) return false;
      body = body.substr(close + 1);
    }
    for (auto& row : split_top_level(body, "\\\\")) {
      if (row.empty()) continue;
      rows.push_back(split_top_level(row, "&"));
    }
    return !rows.empty();
  }
  return false;
}

bool compare_relations(Relation ra, Relation rb, bool ap, bool bp, int depth, const Context& c) {
  canonical_relation(ra);
  canonical_relation(rb);
  const std::string& a0 = ra.parts[0];
  if (ra.parts.size() == 1 && rb.parts.size() == 1) return compare(a0, ap, rb.parts[0], bp, depth + 1, c);
  // A labelled value answers the value: "x = 5" and "5", "f(x) = 1" and "1".
  if (ra.parts.size() == 2 && rb.parts.size() == 1 && ra.ops[0] == "=")
    return is_answer_label(ra.parts[0]) && compare(ra.parts[1], ap, rb.parts[0], bp, depth + 1, c);
  if (rb.parts.size() == 2 && ra.parts.size() == 1 && rb.ops[0] == "=")
    return is_answer_label(rb.parts[0]) && compare(ra.parts[0], ap, rb.parts[1], bp, depth + 1, c);
  // An interval answering a gold inequality: "[-2, 7]" for "-2 <= x <= 7". Not the other way
  // round (as Math-Verify by default): a gold interval asks for a set, not a condition.
  if (ra.parts.size() == 1 || rb.parts.size() == 1) {
    if (ra.parts.size() != 1) return false;
    std::string interval = relation_as_interval(rb);
    return !interval.empty() && outer_brackets(a0) && compare(a0, false, interval, false, depth + 1, c);
  }
  if (ra.ops != rb.ops) return false;
  if (same_sequence(ra.parts, rb.parts, depth, c)) return true;
  if (ra.parts.size() != 2) return false;
  const bool symmetric = ra.ops[0] == "=" || ra.ops[0] == "!=";
  if (symmetric && compare(ra.parts[0], false, rb.parts[1], false, depth + 1, c) &&
      compare(ra.parts[1], false, rb.parts[0], false, depth + 1, c)) {
    return true;
  }
  return relations_proportional(ra.parts[0], ra.parts[1], rb.parts[0], rb.parts[1], !symmetric);
}

bool compare(const std::string& a_in, bool ap, const std::string& b_in, bool bp, int depth, const Context& c) {
  if (a_in.empty() || b_in.empty() || depth > kMaxDepth) return false;
  check_deadline();
  if (a_in == b_in && ap == bp) return true;
  // A decimal comma ("1,22") against a single value (not a list) is a decimal point.
  std::string a = a_in, b = b_in;
  if (std::string d = decimal_comma_reading(a); !d.empty() && !has_top_level_comma(b)) a = d;
  if (std::string d = decimal_comma_reading(b); !d.empty() && !has_top_level_comma(a)) b = d;
  // Matrices.
  std::vector<std::vector<std::string>> ma, mb;
  bool a_matrix = matrix_rows(a, ma), b_matrix = matrix_rows(b, mb);
  if (a_matrix || b_matrix) {
    if (!a_matrix || !b_matrix || ma.size() != mb.size()) return false;
    for (size_t r = 0; r < ma.size(); ++r)
      if (!same_sequence(ma[r], mb[r], depth, c)) return false;
    return true;
  }
  // Unions of intervals or sets.
  auto ua = split_top_level(a, "\\cup"), ub = split_top_level(b, "\\cup");
  if (ua.size() > 1 || ub.size() > 1) return same_set(ua, ub, depth, c);
  // Sets, bare lists and \pm alternatives.
  bool a_set, b_set;
  std::string ca = set_content(a, a_set), cb = set_content(b, b_set);
  auto la = list_elements(ca), lb = list_elements(cb);
  if (a_set || b_set || la.size() > 1 || lb.size() > 1) {
    if (la.size() == 1 && lb.size() == 1) return compare(la[0], ap, lb[0], bp, depth + 1, c);
    // A bare list against a tuple compares in order: "{1,3}" (braces only group) is (1, 3).
    const std::string& single = la.size() == 1 ? la[0] : lb[0];
    if (!a_set && !b_set && (la.size() == 1 || lb.size() == 1) && outer_brackets(single) && single[0] == '(' &&
        single.back() == ')') {
      auto inner = split_top_level(std::string_view(single).substr(1, single.size() - 2), ",");
      return same_sequence(la.size() == 1 ? inner : la, la.size() == 1 ? lb : inner, depth, c);
    }
    return same_set(la, lb, depth, c);
  }
  // Tuples and intervals: same brackets, same elements in order.
  if (outer_brackets(a) || outer_brackets(b)) {
    auto ta = outer_brackets(a) ? split_top_level(std::string_view(a).substr(1, a.size() - 2), ",")
                                : std::vector<std::string>{};
    auto tb = outer_brackets(b) ? split_top_level(std::string_view(b).substr(1, b.size() - 2), ",")
                                : std::vector<std::string>{};
    if (ta.size() > 1 || tb.size() > 1) {
      if (ta.size() > 1 && tb.size() > 1)
        return a.front() == b.front() && a.back() == b.back() && same_sequence(ta, tb, depth, c);
      // A labelled tuple "(p,q) = (3,2)" or an inequality may still answer it.
      auto ra = split_relation(a), rb = split_relation(b);
      if (ra.parts.size() == 1 && rb.parts.size() == 1) return false;
      return compare_relations(std::move(ra), std::move(rb), ap, bp, depth, c);
    }
    // Multiple choice: "(B)" and "B".
    auto choice = [](const std::string& s) {
      return s.size() == 3 && s[0] == '(' && s[2] == ')' && s[1] >= 'A' && s[1] <= 'Z' ? std::string(1, s[1])
                                                                                       : s;
    };
    if (choice(a) != a || choice(b) != b) return choice(a) == choice(b);
  }
  // Equations, inequalities, chains.
  auto ra = split_relation(a), rb = split_relation(b);
  if (ra.parts.size() > 1 || rb.parts.size() > 1) return compare_relations(std::move(ra), std::move(rb), ap, bp, depth, c);
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
  return scalars_equal(a, ap, b, bp, c.precision);
}
}  // namespace

MathVerdict check_math_answer(std::string_view answer, std::string_view gold, const MathEquivalenceOptions& options) {
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
  verdict.equal = compare(a.text, a.percent, g.text, g.percent, 0, Context{options.relative_precision, &verdict.refusal});
  return verdict;
}

bool math_answers_equivalent(std::string_view answer, std::string_view gold, const MathEquivalenceOptions& options) {
  return check_math_answer(answer, gold, options).equal;
}

}  // namespace aha::reward
