// Countdown: reach a target from given numbers with + - * / and parentheses, each number used
// at most once. Holds the exact checker the Countdown reward calls and the solver that the
// generator uses to keep only solvable instances.
//
// check_countdown_expression contract:
//   - `expression` is plain ASCII arithmetic: non-negative integer literals, binary + - * /,
//     parentheses and spaces. No unary minus, no decimals, no "= target" suffix (the reward
//     extracts the expression from the completion before calling this).
//   - every literal must be one of `numbers`; each entry of `numbers` may be used at most
//     once (a number listed twice may be used twice); using all of them is not required.
//   - evaluation is exact over rationals (7/2 stays 7/2), so "non-integer" intermediates are
//     allowed and a result is correct only when it equals `target` exactly.
//   - it never throws on bad input: the verdict says what is wrong.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aha {

enum class CountdownVerdict {
  correct,           // valid and equal to the target
  wrong_result,      // valid, but the value is not the target
  syntax_error,      // not an expression of the accepted form
  number_not_given,  // a literal that is not among the numbers
  number_reused,     // a number used more times than it was given
  division_by_zero,
  overflow,  // an intermediate value outside 64-bit numerators / denominators
};

const char* countdown_verdict_name(CountdownVerdict verdict);

struct CountdownCheck {
  CountdownVerdict verdict;
  std::string detail;  // a human-readable reason ("7 is not one of the numbers 3, 5, 9")
  bool correct() const { return verdict == CountdownVerdict::correct; }
};

CountdownCheck check_countdown_expression(std::string_view expression, const std::vector<int64_t>& numbers,
                                          int64_t target);

// One way of making a value: the expression ("(50 + 25) * 3") and its steps in order
// ("50 + 25 = 75", "75 * 3 = 225"); values of steps may be fractions ("7/2").
struct CountdownDerivation {
  std::string expression;
  std::vector<std::string> steps;
};

// Every integer value reachable from a non-empty subset of numbers (each used at most once),
// or with all_numbers from all of them (each used exactly once), with one derivation each:
// deterministic, and one whose intermediate values are all positive integers where there is
// such a one. Single numbers appear with no steps. At most 6 numbers (aha::Error otherwise):
// the search is exhaustive (about 4,000 combinations for 4 numbers, millions for 6).
std::map<int64_t, CountdownDerivation> countdown_reachable_integers(const std::vector<int64_t>& numbers,
                                                                    bool all_numbers = false);

// A derivation of target from a subset of numbers, or nullopt when it cannot be reached.
std::optional<CountdownDerivation> solve_countdown(const std::vector<int64_t>& numbers, int64_t target);

}  // namespace aha
