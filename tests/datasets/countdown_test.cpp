// The Countdown solver: reachable values (against a Python reference's count), derivations
// that the countdown reward's checker accepts, impossible targets.
#include "datasets/countdown.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "reward/countdown_check.h"

namespace aha {
namespace {

// The checker is the countdown reward's (tests/reward/countdown_check_test.cpp); here it
// independently confirms the solver's derivations.
bool checks(const std::string& expression, const std::vector<int64_t>& numbers, int64_t target) {
  return reward::check_countdown_expression(expression, numbers, target).correct();
}

TEST(CountdownSolver, ReachableIntegersOfTwoNumbers) {
  // From {2, 3}: 2, 3, 2+3, 2-3, 3-2, 2*3 (2/3 and 3/2 are not integers).
  std::set<int64_t> values;
  for (const auto& [v, d] : countdown_reachable_integers({2, 3})) values.insert(v);
  EXPECT_EQ(values, (std::set<int64_t>{-1, 1, 2, 3, 5, 6}));
  values.clear();
  for (const auto& [v, d] : countdown_reachable_integers({2, 3}, /*all_numbers=*/true)) values.insert(v);
  EXPECT_EQ(values, (std::set<int64_t>{-1, 1, 5, 6}));
}

TEST(CountdownSolver, PrefersStepsThroughPositiveIntegers) {
  // 1 - 15 = -14, 17 - -14 = 31 is a derivation, but 17 + 15 - 1 reads better.
  auto every = countdown_reachable_integers({24, 1, 15, 17});
  ASSERT_TRUE(every.count(31));
  for (const auto& step : every.at(31).steps) {
    std::string result = step.substr(step.find(" = ") + 3);
    EXPECT_EQ(result.find_first_not_of("0123456789"), std::string::npos) << step;
    EXPECT_NE(result, "0") << step;
  }
}

TEST(CountdownSolver, SolutionsCheckAndImpossibleTargetsAreNotFound) {
  // 2 5 5 10 -> 24 only through a fraction, e.g. (5 - 2/10) * 5 (checked with Python's
  // fractions over every subset and order).
  auto d = solve_countdown({2, 5, 5, 10}, 24);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(checks(d->expression, {2, 5, 5, 10}, 24)) << d->expression;
  ASSERT_EQ(d->steps.size(), 3u);  // all four numbers: three combinations
  EXPECT_NE(d->steps[0].find('/', d->steps[0].find('=')), std::string::npos) << d->steps[0];  // a fraction
  EXPECT_EQ(d->steps[2].substr(d->steps[2].size() - 5), " = 24");
  EXPECT_FALSE(solve_countdown({1, 1, 1}, 100).has_value());  // at most (1+1)*1... = 3
  auto every = countdown_reachable_integers({3, 7, 25, 50});
  for (const auto& [value, derivation] : every)
    ASSERT_TRUE(checks(derivation.expression, {3, 7, 25, 50}, value))
        << derivation.expression << " = " << value;
  EXPECT_TRUE(every.count(78));
  EXPECT_EQ(every.size(), 327u);  // the Python reference's count of reachable integers
  EXPECT_THROW(countdown_reachable_integers({1, 2, 3, 4, 5, 6, 7}), Error);
}

}  // namespace
}  // namespace aha
