// The exact Countdown checker: does an arithmetic expression reach the target from the given
// numbers? The `countdown` reward (reward/builtin_rewards.h) extracts the expression from a
// completion and calls this; the generator (datasets/synthetic_tasks.h) only makes problems.
//
// Contract of check_countdown_expression:
//   - `expression` is plain ASCII arithmetic: non-negative integer literals, binary + - * /,
//     parentheses, spaces and tabs. No unary minus, no decimals, no "= target" suffix, no
//     look-alikes ('×', '÷', '−', fullwidth digits): the prompt names the ASCII operators, and
//     accepting variants would only widen what a policy can probe.
//   - every literal must be one of `numbers`; each entry of `numbers` may be used at most
//     once (a number listed twice may be used twice); with rules.use_all_numbers each must be
//     used exactly once.
//   - evaluation is exact over 64-bit fractions (core/exact_fraction.h): 6 / (1 - 3/4) is 24.
//     With rules.integer_intermediates every intermediate value must be an integer (the
//     stricter rule of the TV game); by default fractions are allowed, as in TinyZero.
//   - bounded: at most kMaxExpressionBytes bytes and kMaxNesting levels of parentheses, so
//     that hostile input costs no more than reading it (a valid answer with six numbers needs
//     a few dozen bytes and five levels).
//   - it never throws on bad input: the verdict says what is wrong.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aha::reward {

inline constexpr size_t kMaxExpressionBytes = 4096;
inline constexpr int kMaxNesting = 64;

enum class CountdownVerdict {
  correct,           // valid and equal to the target
  wrong_result,      // valid, but the value is not the target
  syntax_error,      // not an expression of the accepted form (or beyond the bounds)
  number_not_given,  // a literal that is not among the numbers
  number_reused,     // a number used more times than it was given
  number_unused,     // with use_all_numbers: a given number left out
  division_by_zero,
  non_integer_intermediate,  // with integer_intermediates: a step gave a fraction
  overflow,  // an intermediate value outside 64-bit numerators / denominators
};

const char* countdown_verdict_name(CountdownVerdict verdict);

struct CountdownRules {
  bool use_all_numbers = false;
  bool integer_intermediates = false;
};

struct CountdownCheck {
  CountdownVerdict verdict;
  std::string detail;  // a human-readable reason ("7 is not one of the numbers 3, 5, 9")
  bool correct() const { return verdict == CountdownVerdict::correct; }
};

CountdownCheck check_countdown_expression(std::string_view expression, const std::vector<int64_t>& numbers,
                                          int64_t target, const CountdownRules& rules = {});

}  // namespace aha::reward
