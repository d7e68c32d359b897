// build_policy_batch: the row layout worked out by hand.
#include "recipes/runner/batch_builder.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace aha::recipes {
namespace {

TEST(BatchBuilder, LeftPadsPromptsRightPadsCompletionsAndShiftsTheMask) {
  std::vector<int64_t> p0{5, 6, 7}, c0{8, 9}, p1{4}, c1{3, 2, 1}, c2{};
  std::vector<float> l0{-0.5f, -1.5f}, l1{-0.1f, -0.2f, -0.3f}, l2{};
  auto b = build_policy_batch({{&p0, &c0, &l0, 1.0f, 1.0f}, {&p1, &c1, &l1, -1.0f, 0.0f}, {&p1, &c2, &l2, 0.0f, 0.5f}},
                              /*pad_id=*/0);
  // P = 3, C = 3, T = 6.
  auto ids = torch::tensor({5, 6, 7, 8, 9, 0, 0, 0, 4, 3, 2, 1, 0, 0, 4, 0, 0, 0}, torch::kInt64).view({3, 6});
  EXPECT_TRUE(torch::equal(b.input_ids, ids));
  auto att = torch::tensor({1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0}, torch::kInt64).view({3, 6});
  EXPECT_TRUE(torch::equal(b.attention_mask, att));
  // Position t predicts token t+1: completions start at t = P - 1 = 2.
  auto mask = torch::tensor({0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0}, torch::kFloat32).view({3, 5});
  EXPECT_TRUE(torch::equal(b.completion_mask, mask));
  auto old = torch::tensor({0.f, 0.f, -0.5f, -1.5f, 0.f, 0.f, 0.f, -0.1f, -0.2f, -0.3f, 0.f, 0.f, 0.f, 0.f, 0.f}).view({3, 5});
  EXPECT_TRUE(torch::equal(b.old_logprobs, old));
  EXPECT_TRUE(torch::equal(b.advantages, torch::tensor({1.0f, -1.0f, 0.0f})));
  EXPECT_TRUE(torch::equal(b.rewards, torch::tensor({1.0f, 0.0f, 0.5f})));
}

TEST(BatchBuilder, RejectsMismatchedLogprobsAndEmptyInput) {
  std::vector<int64_t> p{1}, c{2, 3};
  std::vector<float> l{-1.0f};
  auto e = test::error_of([&] { build_policy_batch({{&p, &c, &l, 0, 0}}, 0); });
  EXPECT_NE(e.find("1 log-probs for 2 completion tokens"), std::string::npos) << e;
  EXPECT_NE(test::error_of([] { build_policy_batch({}, 0); }).find("no rows"), std::string::npos);
}

}  // namespace
}  // namespace aha::recipes
