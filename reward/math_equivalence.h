// Deciding whether a model's final answer equals a gold answer (the math_accuracy verifier).
//
// Both sides are normalised (reward/latex_normalizer.h), then compared by structure. The full
// rules, with examples, are in reward/MATH_VERIFIER.md; in short:
// - identical text is equal; "1000,99" / "0,111" are decimal commas when the other side is no
//   list (three digits after the comma: a thousands separator; one: a list);
// - matrices (pmatrix, bmatrix, matrix, Bmatrix, vmatrix, array) element by element;
// - unions, sets (\{a, b\}), bare lists ("1, 2") and "a \pm b" as sets of values (repeats
//   ignored when both sides have several elements; one element never equals several); a bare
//   list against a parenthesised tuple in order;
// - tuples and intervals: same brackets, elements in order;
// - relations (=, <, <=, !=, and > >= read backwards; \approx keeps the value before it): a
//   chain of equalities is its first and last part when the first names the value, else its
//   last; a labelled value ("x = 5", "f(x) = 1") answers the value; two relations with the same
//   operators are equal part by part or when (left - right) of one is a constant multiple of
//   the other's (positive for < and <=); an interval answers a gold inequality, not the reverse;
// - multiple choice "(B)" equals "B"; words compare case-insensitively; 4210_5 equals 4210;
// - scalars by value (reward/math_expression.h): exactly as rationals; a decimal literal
//   against a constant with no finite decimal form (1/12, \pi) within
//   MathEquivalenceOptions::relative_precision, against a finite decimal only exactly; expressions with
//   variables at 4 deterministic points within relative 1e-9; a percentage equals its number
//   with or without the %, and its number / 100.
// Rules that keep the verifier from being fooled: an empty answer, an unparsable one, a list
// answering a scalar ("1, 2" or "1 \text{ or } 2" for 1), and one with variables the gold
// does not have are not equal; an answer longer than 2 x gold + 48 characters after
// normalisation is refused (a giant expression that happens to evaluate to the gold is not an
// answer); two numbers side by side ("1 2") do not parse.
// Cost: normalising is linear in the answer's length; the structural comparison then runs
// only on an answer within the length cap above, whose brackets ((, [, {, \{) nest at most
// kMaxAnswerNesting deep and whose lists hold at most kMaxAnswerElements elements (beyond, it
// is refused, with the reason in MathVerdict::refusal), and it checks the reward call's
// deadline (reward/deadline.h) as it goes.
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
  // How close a decimal answer must be to a constant it approximates (one with no finite
  // decimal form), relative to the larger magnitude ("0.0833333" for \frac{1}{12}); 0: only an
  // exactly equal decimal.
  double relative_precision = 1e-6;
};

MathVerdict check_math_answer(std::string_view answer, std::string_view gold,
                              const MathEquivalenceOptions& options = {});

// check_math_answer(answer, gold, options).equal
bool math_answers_equivalent(std::string_view answer, std::string_view gold,
                             const MathEquivalenceOptions& options = {});

}  // namespace aha::reward
