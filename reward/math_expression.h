// A small parser and evaluator for one normalised scalar math expression (see
// reward/latex_normalizer.h), used to decide whether two answers are equal.
//
// Grammar: + - * / ^ (right-associative; "x^{...}", or one digit run / letter / command after
// ^), unary minus, implicit multiplication ("2x", "3\sqrt{2}", "(a+5)(b+2)"), postfix !,
// parentheses and braces, \frac{a}{b} (and one-token arguments: \frac 34, \frac9{19}),
// \sqrt{x}, \sqrt[n]{x}, \pi, e (Euler's number), scientific notation (1.5e-3), mixed numbers
// ("1\frac{4}{5}" is 1 + 4/5), |x|, \sin \cos \tan \cot \sec \csc \ln \log \exp and their
// arcs, variables (one letter, optionally subscripted: x_1, a_{n}; Greek letters by name).
// Two numbers side by side ("1 2") are a parse error, not a product: a list or a typo must
// not be read as a number.
//
// Evaluation: exact rational arithmetic (reward/rational.h) when the expression has no
// variables and no irrational part; otherwise double evaluation with the variables bound by
// the caller. Expressions are capped (kMaxNodes) so that one check stays cheap.
//
// Cost: parsing is linear in the text's length (no backtracking over nested structure), and
// recursion is capped at a fixed nesting depth; deeper text does not parse.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reward/rational.h"

namespace aha::reward {

class MathExpression {
 public:
  static constexpr size_t kMaxNodes = 256;

  // nullopt when the text is not one expression of the grammar above.
  static std::optional<MathExpression> parse(std::string_view text);

  enum class Exactness { exact, inexact, overflow };
  // exact: value holds the exact rational value. inexact: variables or irrational parts (use
  // evaluate()). overflow: a rational part does not fit 128 bits (not comparable).
  Exactness exact_value(Rational& value) const;

  // Variable names, in order of first appearance.
  const std::vector<std::string>& variables() const { return variables_; }
  // The value with variables()[i] = values[i]; NaN where undefined.
  double evaluate(const std::vector<double>& values) const;

  // Functions of Op::func nodes (Node::index).
  enum Function { kSin, kCos, kTan, kCot, kSec, kCsc, kLn, kExp, kArcsin, kArccos, kArctan };

 private:
  enum class Op : uint8_t {
    number,
    pi,
    euler,
    variable,
    add,
    sub,
    mul,
    div,
    neg,
    pow,
    root,
    factorial,
    abs,
    func
  };
  struct Node {
    Op op = Op::number;
    int a = -1, b = -1;  // children (root: a = radicand, b = index expression or -1 for 2)
    int index = 0;       // variable index or function id
    Rational value;      // number (exact when exact_number)
    double approx = 0;   // number as a double
    bool exact_number = true;
  };
  friend class ExpressionParser;
  Exactness exact(int node, Rational& out) const;
  double eval(int node, const std::vector<double>& values) const;

  std::vector<Node> nodes_;
  int root_ = -1;
  std::vector<std::string> variables_;
};

}  // namespace aha::reward
