// Deciding whether a model's final answer equals a gold answer (the math_accuracy verifier).
//
// Both sides are normalised (reward/latex_normalizer.h), then compared by structure:
// - identical text is equal;
// - matrices (\begin{pmatrix} ... \end{pmatrix}, bmatrix) element by element;
// - unions (A \cup B), sets (\{a, b\}) and bare lists ("1, 2" answering "all solutions") as
//   unordered collections of the same size; "a \pm b" is the two-element list {a+b, a-b};
// - bracketed tuples and intervals ("(1, 2]") element by element, with the same brackets;
// - equations: "x = 5" answers "5" when its left side is one variable; two equations are equal
//   when (left - right) of one is a non-zero multiple of the other's;
// - multiple choice "(B)" equals "B"; word answers ("Evelyn") compare case-insensitively;
// - a number base subscript is ignored (4210_5 equals 4210);
// - scalars by value (reward/math_expression.h): exactly as rationals when both are rational;
//   a decimal number against an irrational constant ("3.14159" for \pi) is never equal (an
//   approximation is not the answer); otherwise by double evaluation: constants once, within
//   relative 1e-12, expressions with variables at 4 deterministic points within relative
//   1e-9; a value too large for exact rationals is never "close enough". A percentage equals its number with
//   or without the %, and its number / 100.
// Rules that keep the verifier from being fooled: an empty answer, an unparsable one, a list
// answering a scalar ("1, 2" or "1 \text{ or } 2" for 1), and one with variables the gold
// does not have are not equal; an answer longer than 2 x gold + 48 characters after
// normalisation is refused (a giant expression that happens to evaluate to the gold is not an
// answer); two numbers side by side ("1 2") do not parse.
// Cost: normalising is linear in the answer's length; the structural comparison then runs
// only on an answer within the length cap above and whose brackets ((, [, {, \{) nest at most
// kMaxAnswerNesting deep (deeper is refused, with the reason in MathVerdict::refusal), and it
// checks the reward call's deadline (reward/deadline.h) as it goes.
#pragma once
#include <string>
#include <string_view>

namespace aha::reward {

constexpr int kMaxAnswerNesting = 64;
// Lists and sets of more elements are refused (their unordered comparison is quadratic).
constexpr size_t kMaxAnswerElements = 256;

struct MathVerdict {
  bool equal = false;
  // Why the answer was not compared (too long, nested too deep, too many elements), else empty.
  std::string refusal;
};

struct MathEquivalenceOptions {
  // How close a decimal answer must be to a constant it approximates, relative to the larger
  // magnitude ("0.0833333" for \frac{1}{12}); 0: only an exactly equal decimal.
  double relative_precision = 1e-6;
};

MathVerdict check_math_answer(std::string_view answer, std::string_view gold,
                              const MathEquivalenceOptions& options = {});

// check_math_answer(answer, gold, options).equal
bool math_answers_equivalent(std::string_view answer, std::string_view gold,
                             const MathEquivalenceOptions& options = {});

}  // namespace aha::reward
