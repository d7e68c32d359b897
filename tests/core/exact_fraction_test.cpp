// Exact fractions: hand-worked reductions and operations, and the edges where 64 bits end.
#include "core/exact_fraction.h"

#include <gtest/gtest.h>

#include <limits>

namespace aha {
namespace {

Fraction of(char op, Fraction a, Fraction b) {
  Fraction out{-999, 1};
  EXPECT_EQ(apply_operation(op, a, b, out), FractionError::none) << a.to_string() << op << b.to_string();
  return out;
}

TEST(ExactFraction, ReducesWithAPositiveDenominator) {
  EXPECT_EQ(make_fraction(6, 8), (Fraction{3, 4}));
  EXPECT_EQ(make_fraction(6, -8), (Fraction{-3, 4}));
  EXPECT_EQ(make_fraction(-6, -8), (Fraction{3, 4}));
  EXPECT_EQ(make_fraction(0, -5), (Fraction{0, 1}));
  EXPECT_FALSE(make_fraction(1, 0).has_value());
  EXPECT_EQ(make_fraction(7, 2)->to_string(), "7/2");
  EXPECT_EQ(make_fraction(-14, 2)->to_string(), "-7");
}

TEST(ExactFraction, OperationsAreExact) {
  EXPECT_EQ(of('+', {1, 3}, {1, 6}), (Fraction{1, 2}));   // 2/6 + 1/6
  EXPECT_EQ(of('-', {1, 4}, {3, 4}), (Fraction{-1, 2}));
  EXPECT_EQ(of('*', {2, 3}, {9, 4}), (Fraction{3, 2}));   // 18/12
  EXPECT_EQ(of('/', {6, 1}, {1, 4}), (Fraction{24, 1}));  // 6 / (1/4)
  Fraction untouched{5, 1};
  EXPECT_EQ(apply_operation('/', {7, 1}, {0, 1}, untouched), FractionError::division_by_zero);
  EXPECT_EQ(untouched, (Fraction{5, 1}));
}

TEST(ExactFraction, OverflowIsReportedNotWrapped) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  Fraction out;
  EXPECT_EQ(apply_operation('*', {3037000500, 1}, {3037000500, 1}, out), FractionError::overflow);  // > 2^63
  EXPECT_EQ(apply_operation('+', {max, 1}, {1, 1}, out), FractionError::overflow);
  EXPECT_EQ(apply_operation('-', {max, 1}, {1, 1}, out), FractionError::none);
  EXPECT_EQ(out, (Fraction{max - 1, 1}));
  EXPECT_EQ(apply_operation('/', {1, 1}, {max, 1}, out), FractionError::none);  // 1/max fits
  EXPECT_EQ(apply_operation('/', {1, max}, {2, 1}, out), FractionError::overflow);  // 1/(2 max) does not
  // INT64_MIN is out of range, so that negation never overflows.
  EXPECT_FALSE(make_fraction(std::numeric_limits<int64_t>::min(), 1).has_value());
}

}  // namespace
}  // namespace aha
