// Hand-worked cases and bad input for policy/advantages. Golden values for every mode are in
// grpo_golden_test.cpp.
#include "policy/learner/advantages.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace {

using aha::policy::AdvantageMode;
using aha::policy::AdvantageOptions;
using aha::policy::compute_advantages;

torch::Tensor rewards(std::vector<double> r) { return torch::tensor(r, torch::kFloat64); }

TEST(Advantages, HandWorkedModes) {
  // One group of G = 4: mean 0.5, unbiased std sqrt(1/3).
  auto r = rewards({1, 0, 0, 1});
  auto grpo = compute_advantages(r, 4, {.mode = AdvantageMode::grpo, .eps = 0.0});
  double z = 0.5 / std::sqrt(1.0 / 3.0);
  EXPECT_TRUE(torch::allclose(grpo, rewards({z, -z, -z, z})));
  auto dr = compute_advantages(r, 4, {.mode = AdvantageMode::dr_grpo});
  EXPECT_TRUE(torch::equal(dr, rewards({0.5, -0.5, -0.5, 0.5})));
  // RLOO: 1 - (0 + 0 + 1) / 3 = 2/3; 0 - 2/3.
  auto rloo = compute_advantages(r, 4, {.mode = AdvantageMode::rloo});
  EXPECT_TRUE(torch::allclose(rloo, rewards({2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3})));
}

TEST(Advantages, DegenerateGroupsGiveExactZeros) {
  // 0.1 * 3 / 3 != 0.1 in floating point: without the explicit zero, grpo would turn the
  // rounding error into a large advantage through the division by eps.
  auto r = rewards({0.1, 0.1, 0.1, 0.7, 0.2, 0.7});
  for (auto mode : {AdvantageMode::grpo, AdvantageMode::dr_grpo, AdvantageMode::rloo}) {
    for (bool whiten : {false, true}) {
      auto a = compute_advantages(r, 3, {.mode = mode, .whiten_batch = whiten});
      EXPECT_TRUE(torch::equal(a.slice(0, 0, 3), torch::zeros({3}, torch::kFloat64)));
      EXPECT_GT(a.slice(0, 3).abs().sum().item<double>(), 0.1);
    }
  }
  auto d = aha::policy::degenerate_groups(r, 3);
  EXPECT_TRUE(d[0].item<bool>());
  EXPECT_FALSE(d[1].item<bool>());
}

TEST(Advantages, WhitenedBatchHasZeroMeanUnitStd) {
  auto r = rewards({0.3, 0.9, 0.1, 0.2, 1.0, 0.0, 0.5, 0.8});
  auto a =
      compute_advantages(r, 2, {.mode = AdvantageMode::dr_grpo, .whiten_batch = true, .eps = 0.0});
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(a.std().item<double>(), 1.0, 1e-12);
}

TEST(Advantages, BadInputIsNamed) {
  auto message = [](torch::Tensor r, int64_t g) {
    try {
      compute_advantages(r, g, {});
    } catch (const aha::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(rewards({1, 2, 3}), 2).find("multiple of group_size"), std::string::npos);
  EXPECT_NE(message(rewards({1, 2}), 1).find("group_size"), std::string::npos);
  EXPECT_NE(message(rewards({1, NAN, 0, 1}), 2).find("reward 1"), std::string::npos);
  EXPECT_NE(message(torch::zeros({2, 2}), 2).find("1-D"), std::string::npos);
  EXPECT_NE(message(torch::tensor({1, 0}), 2).find("floating-point"), std::string::npos);
  EXPECT_THROW(aha::policy::parse_advantage_mode("ppo"), aha::Error);
}

}  // namespace
