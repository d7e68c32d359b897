// Stop conditions: stop strings across and inside tokens, several EOS ids, the token budget.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "rollout/stop_conditions.h"

namespace {

using aha::FinishReason;

const std::map<int64_t, std::string> kBytes = {
    {10, "</"}, {11, "ans"}, {12, "wer>"}, {13, "x</answer>y"}, {14, "answer>"}, {15, "x"}, {16, "<"}, {17, "/"}, {18, ""}};

aha::TokenBytesFn bytes_fn() {
  return [](int64_t id) { return kBytes.at(id); };
}

std::vector<FinishReason> feed(const aha::StopSettings& s, const std::vector<int64_t>& tokens) {
  auto fn = bytes_fn();
  aha::StopChecker checker(s, fn);
  std::vector<FinishReason> out;
  for (int64_t t : tokens) out.push_back(checker.push(t));
  return out;
}

aha::StopSettings answer_stop() {
  aha::StopSettings s;
  s.stop_strings = {"</answer>"};
  s.max_new_tokens = 100;
  return s;
}

TEST(StopConditions, StopStringSplitAcrossTokens) {
  EXPECT_EQ(feed(answer_stop(), {15, 10, 11, 12}),
            (std::vector<FinishReason>{FinishReason::kNone, FinishReason::kNone, FinishReason::kNone, FinishReason::kStop}));
  // One byte per token, with an empty token in between.
  EXPECT_EQ(feed(answer_stop(), {16, 17, 18, 14}).back(), FinishReason::kStop);
}

TEST(StopConditions, StopStringInsideOneToken) {
  EXPECT_EQ(feed(answer_stop(), {13}).back(), FinishReason::kStop);
}

TEST(StopConditions, NoMatchWhenTheBytesAreNotContiguous) {
  auto out = feed(answer_stop(), {10, 15, 14, 11, 15, 12});  // "</" "x" "answer>" "ans" "x" "wer>"
  for (auto r : out) EXPECT_EQ(r, FinishReason::kNone);
}

TEST(StopConditions, SeveralStopStrings) {
  auto s = answer_stop();
  s.stop_strings.push_back("xx");
  EXPECT_EQ(feed(s, {15, 15}).back(), FinishReason::kStop);
  auto fn = bytes_fn();
  aha::StopChecker checker(s, fn);
  checker.push(10);
  checker.push(11);
  EXPECT_EQ(checker.push(12), FinishReason::kStop);
  EXPECT_EQ(checker.matched_stop(), "</answer>");
}

TEST(StopConditions, AnyOfSeveralEosIds) {
  aha::StopSettings s;
  s.eos_token_ids = {2, 7};
  s.max_new_tokens = 10;
  EXPECT_EQ(feed(s, {5, 7}).back(), FinishReason::kEos);
  EXPECT_EQ(feed(s, {2}).back(), FinishReason::kEos);
  EXPECT_EQ(feed(s, {5, 6, 8}).back(), FinishReason::kNone);
  s.ignore_eos = true;
  EXPECT_EQ(feed(s, {2, 7}).back(), FinishReason::kNone);
}

TEST(StopConditions, TokenBudget) {
  aha::StopSettings s;
  s.max_new_tokens = 3;
  EXPECT_EQ(feed(s, {1, 1, 1}),
            (std::vector<FinishReason>{FinishReason::kNone, FinishReason::kNone, FinishReason::kLength}));
  // A stop string or EOS on the last allowed token is reported as such.
  auto a = answer_stop();
  a.max_new_tokens = 3;
  EXPECT_EQ(feed(a, {10, 11, 12}).back(), FinishReason::kStop);
  a.eos_token_ids = {1};
  EXPECT_EQ(feed(a, {15, 15, 1}).back(), FinishReason::kEos);
}

TEST(StopConditions, RejectsBadSettings) {
  aha::StopSettings s = answer_stop();
  aha::TokenBytesFn none;
  EXPECT_THROW(aha::StopChecker(s, none), aha::Error);  // stop strings need the token bytes
  auto fn = bytes_fn();
  s.stop_strings = {""};
  EXPECT_THROW(aha::StopChecker(s, fn), aha::Error);
  s.stop_strings = {};
  s.max_new_tokens = 0;
  EXPECT_THROW(aha::StopChecker(s, fn), aha::Error);
}

TEST(StopConditions, ReasonNames) {
  EXPECT_STREQ(aha::finish_reason_name(FinishReason::kEos), "eos");
  EXPECT_STREQ(aha::finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_STREQ(aha::finish_reason_name(FinishReason::kLength), "length");
}

}  // namespace
