// The Countdown checker (hand-worked expressions, right and wrong, hostile ones) and the
// countdown reward around it (answer extraction, the example's numbers and target, options).
#include "reward/countdown_check.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "reward/reward_registry.h"

namespace aha::reward {
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

TEST(CountdownCheck, UnicodeLookAlikesAreSyntaxErrors) {
  // The prompt names + - * /; a look-alike is refused rather than guessed (and the message
  // names the byte, since it is not printable ASCII).
  const std::vector<int64_t> n = {3, 7, 25, 50};
  for (const char* bad : {"3 \u00d7 7", "21 \u00f7 7", "50 \u2212 25", "50 \uff0b 25", "\uff13 * 7", "3 \u2217 7",
                          "\u0663 * 7", "\U0001D7D1 * 7"}) {
    auto c = check_countdown_expression(bad, n, 21);
    EXPECT_EQ(c.verdict, CountdownVerdict::syntax_error) << bad;
    EXPECT_NE(c.detail.find("byte 0x"), std::string::npos) << c.detail;
  }
}

TEST(CountdownCheck, HugeExpressionsAreBounded) {
  // Longer than kMaxExpressionBytes: refused before parsing, whatever it holds.
  std::string long_sum = "3";
  while (long_sum.size() <= kMaxExpressionBytes) long_sum += " + 3";
  auto c = check_countdown_expression(long_sum, {3}, 3);
  EXPECT_EQ(c.verdict, CountdownVerdict::syntax_error);
  EXPECT_NE(c.detail.find("longer than"), std::string::npos) << c.detail;
  // Within the bound, nesting kMaxNesting deep is fine and one more level is refused.
  auto nested = [](int depth) { return std::string(depth, '(') + "3" + std::string(depth, ')'); };
  EXPECT_EQ(verdict(nested(kMaxNesting), {3}, 3), CountdownVerdict::correct);
  EXPECT_EQ(verdict(nested(kMaxNesting + 1), {3}, 3), CountdownVerdict::syntax_error);
  // Many literals of numbers not given stop at the first.
  EXPECT_EQ(verdict("1+1+1+1+1+1+1+1+1+1", {1, 1}, 10), CountdownVerdict::number_reused);
}

TEST(CountdownCheck, OptionalRules) {
  CountdownRules all;
  all.use_all_numbers = true;
  EXPECT_EQ(check_countdown_expression("50 + 25 + 3", {3, 7, 25, 50}, 78, all).verdict, CountdownVerdict::number_unused);
  EXPECT_TRUE(check_countdown_expression("50 + 25 + 3 * (7 - 7)", {3, 7, 7, 25, 50}, 75, all).correct());
  CountdownRules integers;
  integers.integer_intermediates = true;
  // 6 / (1 - 3/4) = 24 goes through 3/4: fine by default, refused under the integer rule.
  EXPECT_TRUE(check_countdown_expression("6 / (1 - 3 / 4)", {1, 3, 4, 6}, 24).correct());
  auto c = check_countdown_expression("6 / (1 - 3 / 4)", {1, 3, 4, 6}, 24, integers);
  EXPECT_EQ(c.verdict, CountdownVerdict::non_integer_intermediate);
  EXPECT_NE(c.detail.find("3/4"), std::string::npos) << c.detail;
  EXPECT_TRUE(check_countdown_expression("(50 - 2) / 4", {2, 4, 50}, 12, integers).correct());
}

// The reward: a Countdown example as datasets/synthetic_tasks.h makes it.
RewardExample countdown_example(const std::string& numbers = "[3, 7, 25, 50]", int64_t target = 78) {
  RewardExample ex;
  ex.prompt = "Using the numbers " + numbers + ", create an equation that equals " + std::to_string(target) + ".";
  ex.gold = std::to_string(target);
  ex.task = TaskKind::custom;
  ex.metadata_json =
      R"({"task": "countdown", "numbers": )" + numbers + R"(, "target": )" + std::to_string(target) + "}";
  return ex;
}

double score(const std::string& completion, const RewardExample& ex = countdown_example(),
             const std::string& options = "{}") {
  auto reward = create_reward({"countdown", "countdown", 1.0, 10.0, options});
  return reward->score(ex, {completion}).value;
}

TEST(CountdownReward, ScoresTheLastAnswerTag) {
  EXPECT_EQ(score("<think>50 + 25 = 75, 75 + 3 = 78</think><answer>50 + 25 + 3</answer>"), 1.0);
  EXPECT_EQ(score("<answer> (50 + 25) + 3 = 78 </answer>"), 1.0);  // a trailing "= target" is allowed
  EXPECT_EQ(score("<answer>50 + 25 + 3 = 77</answer>"), 0.0);      // ... but not another value
  EXPECT_EQ(score("<answer>50 + 25 + 3 = 78 = 78</answer>"), 0.0);
  EXPECT_EQ(score("<answer>78</answer>"), 0.0);  // the target itself is not a given number
  // Only the last tag counts: an earlier right one does not rescue a wrong final answer.
  EXPECT_EQ(score("<answer>50 + 25 + 3</answer><answer>50 + 25</answer>"), 0.0);
  // No tag, an unterminated tag, or an empty one: no expression.
  EXPECT_EQ(score("50 + 25 + 3 = 78"), 0.0);
  EXPECT_EQ(score("<answer>50 + 25 + 3"), 0.0);
  EXPECT_EQ(score("<answer></answer>"), 0.0);
  EXPECT_EQ(score("<answer>\\boxed{50 + 25 + 3}</answer>"), 0.0);  // LaTeX is not the accepted form
}

TEST(CountdownReward, TheExampleSuppliesNumbersAndTarget) {
  // The target from the gold when the metadata has none.
  RewardExample ex = countdown_example();
  ex.metadata_json = R"({"numbers": [3, 7, 25, 50]})";
  EXPECT_EQ(score("<answer>50 + 25 + 3</answer>", ex), 1.0);
  // Another task in a mixed batch scores 0; a Countdown example without numbers is an error.
  ex.metadata_json = R"({"task": "arithmetic"})";
  EXPECT_EQ(score("<answer>50 + 25 + 3</answer>", ex), 0.0);
  ex.metadata_json = R"({"task": "countdown", "target": 78})";
  EXPECT_THROW(score("<answer>3</answer>", ex), Error);
  ex.metadata_json = "";
  EXPECT_THROW(score("<answer>3</answer>", ex), Error);
  // A gold that disagrees with the metadata's target is an error, not a guess.
  ex = countdown_example();
  ex.gold = "77";
  EXPECT_THROW(score("<answer>50 + 25 + 3</answer>", ex), Error);
  ex.metadata_json = R"({"numbers": [3, 7, 25, 50]})";
  ex.gold = "seventy-eight";
  EXPECT_THROW(score("<answer>50 + 25 + 3</answer>", ex), Error);
}

TEST(CountdownReward, OptionsAreChecked) {
  EXPECT_EQ(score("<answer>50 + 25 + 3</answer>", countdown_example(), R"({"use_all_numbers": true})"), 0.0);
  EXPECT_EQ(score("<answer>(50 - 7) + 25 + 3 + 7</answer>", countdown_example("[3, 7, 7, 25, 50]", 78),
                  R"({"use_all_numbers": true})"),
            1.0);
  try {
    score("<answer>3</answer>", countdown_example(), R"({"all_numbers": true})");
    FAIL() << "an unknown option was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use_all_numbers"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::reward
