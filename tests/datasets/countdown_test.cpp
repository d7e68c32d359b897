// The Countdown checker (hand-worked expressions, right and wrong) and the solver.
#include "datasets/countdown.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace aha {
namespace {

CountdownVerdict verdict(const std::string& expr, const std::vector<int64_t>& numbers, int64_t target) {
  return check_countdown_expression(expr, numbers, target).verdict;
}

TEST(CountdownCheck, AcceptsCorrectExpressions) {
  const std::vector<int64_t> n = {3, 7, 25, 50};
  EXPECT_EQ(verdict("50 + 25 + 3", n, 78), CountdownVerdict::correct);
  EXPECT_EQ(verdict("(50+25)+3", n, 78), CountdownVerdict::correct);
  EXPECT_EQ(verdict("50 - 25 * 3 + 7 * 3", {50, 25, 3, 7, 3}, -4), CountdownVerdict::correct);  // precedence
  EXPECT_EQ(verdict("50 - 25 - 3", n, 22), CountdownVerdict::correct);           // left-associative: (50-25)-3
  EXPECT_EQ(verdict("50 / 25 / 2", {50, 25, 2}, 1), CountdownVerdict::correct);  // (50/25)/2, not 50/(25/2)
  EXPECT_EQ(verdict("  7\t", n, 7), CountdownVerdict::correct);
  // Exact rationals: 6 / (1 - 3/4) = 6 / (1/4) = 24.
  EXPECT_EQ(verdict("6 / (1 - 3 / 4)", {1, 3, 4, 6}, 24), CountdownVerdict::correct);
  // A number given twice may be used twice.
  EXPECT_EQ(verdict("5 * 5 + 3", {5, 3, 5}, 28), CountdownVerdict::correct);
  EXPECT_TRUE(check_countdown_expression("3 * 7", n, 21).correct());
}

TEST(CountdownCheck, RejectsNumbersNotGivenOrReused) {
  const std::vector<int64_t> n = {3, 7, 25, 50};
  auto c = check_countdown_expression("50 + 28", n, 78);
  EXPECT_EQ(c.verdict, CountdownVerdict::number_not_given);
  EXPECT_NE(c.detail.find("28"), std::string::npos) << c.detail;
  EXPECT_EQ(verdict("25 + 25 + 28", {25, 28, 3}, 78), CountdownVerdict::number_reused);
  EXPECT_EQ(verdict("50 + 25 + 3 - 3", n, 75), CountdownVerdict::number_reused);
  EXPECT_EQ(verdict("5 * 5 * 5", {5, 5, 3}, 125), CountdownVerdict::number_reused);
  EXPECT_EQ(verdict("078", {78}, 78), CountdownVerdict::correct);  // leading zeros: the same number
  EXPECT_EQ(verdict("1", n, 1), CountdownVerdict::number_not_given);
}

TEST(CountdownCheck, DivisionByZeroAndInexactResults) {
  EXPECT_EQ(verdict("7 / (3 - 3)", {3, 3, 7}, 7), CountdownVerdict::division_by_zero);
  // A division by zero is reported even when its subtree would be multiplied away.
  EXPECT_EQ(verdict("0 * (7 / 0)", {0, 7, 0}, 0), CountdownVerdict::division_by_zero);
  auto c = check_countdown_expression("10 / 3", {10, 3, 4}, 3);
  EXPECT_EQ(c.verdict, CountdownVerdict::wrong_result);
  EXPECT_NE(c.detail.find("10/3"), std::string::npos) << c.detail;
  EXPECT_EQ(verdict("(10 + 4) / 3", {10, 3, 4}, 4), CountdownVerdict::wrong_result);  // 14/3, not 4
  EXPECT_EQ(verdict("50 + 25", {3, 7, 25, 50}, 78), CountdownVerdict::wrong_result);
}

TEST(CountdownCheck, SyntaxErrors) {
  const std::vector<int64_t> n = {3, 7, 25, 50};
  for (const char* bad : {"", "   ", "50 +", "(50 + 25", "50 + 25)", "-3 + 50", "50 + 25 = 75", "2^3", "3.0 + 7",
                          "50 25", "()", "3 x 7", "50 + + 25"}) {
    EXPECT_EQ(verdict(bad, n, 75), CountdownVerdict::syntax_error) << "'" << bad << "'";
  }
  // Adversarially deep nesting is refused, not a stack overflow.
  std::string deep = std::string(100000, '(') + "3" + std::string(100000, ')');
  EXPECT_EQ(verdict(deep, {3}, 3), CountdownVerdict::syntax_error);
  EXPECT_EQ(verdict(std::string(10, '(') + "3" + std::string(10, ')'), {3}, 3), CountdownVerdict::correct);
  EXPECT_EQ(verdict("99999999999999999999999", {3}, 3), CountdownVerdict::syntax_error);
}

TEST(CountdownCheck, OverflowIsAVerdict) {
  const int64_t big = 3037000500;  // big * big > 2^63
  EXPECT_EQ(verdict("3037000500 * 3037000500", {big, big}, 0), CountdownVerdict::overflow);
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
  EXPECT_TRUE(check_countdown_expression(d->expression, {2, 5, 5, 10}, 24).correct()) << d->expression;
  ASSERT_EQ(d->steps.size(), 3u);  // all four numbers: three combinations
  EXPECT_NE(d->steps[0].find('/', d->steps[0].find('=')), std::string::npos) << d->steps[0];  // a fraction
  EXPECT_EQ(d->steps[2].substr(d->steps[2].size() - 5), " = 24");
  EXPECT_FALSE(solve_countdown({1, 1, 1}, 100).has_value());  // at most (1+1)*1... = 3
  auto every = countdown_reachable_integers({3, 7, 25, 50});
  for (const auto& [value, derivation] : every)
    ASSERT_TRUE(check_countdown_expression(derivation.expression, {3, 7, 25, 50}, value).correct())
        << derivation.expression << " = " << value;
  EXPECT_TRUE(every.count(78));
  EXPECT_EQ(every.size(), 327u);  // the Python reference's count of reachable integers
  EXPECT_THROW(countdown_reachable_integers({1, 2, 3, 4, 5, 6, 7}), Error);
}

}  // namespace
}  // namespace aha
