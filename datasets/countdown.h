// Countdown: reach a target from given numbers with + - * / and parentheses, each number used
// at most once. Holds the exhaustive solver that the generator (datasets/synthetic_tasks.h)
// uses to keep only solvable instances and to write a worked solution. Checking an answer is
// the `countdown` reward's job (reward/countdown_check.h); both compute with the same exact
// fractions (core/exact_fraction.h).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aha {

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
