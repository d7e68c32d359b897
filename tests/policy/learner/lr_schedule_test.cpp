#include "policy/learner/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

using aha::policy::LrDecay;
using aha::policy::LrSchedule;

TEST(LrSchedule, ConstantWithWarmup) {
  LrSchedule s({.decay = LrDecay::constant, .warmup_steps = 4});
  EXPECT_DOUBLE_EQ(s.lr_factor(0), 0.0);
  EXPECT_DOUBLE_EQ(s.lr_factor(1), 0.25);
  EXPECT_DOUBLE_EQ(s.lr_factor(3), 0.75);
  EXPECT_DOUBLE_EQ(s.lr_factor(4), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_factor(1000), 1.0);
  LrSchedule none({});
  EXPECT_DOUBLE_EQ(none.lr_factor(0), 1.0);
}

TEST(LrSchedule, CosineToFloor) {
  // warm-up 2, then cosine over steps 2..12 to a floor of 0.1.
  LrSchedule s(
      {.decay = LrDecay::cosine, .warmup_steps = 2, .total_steps = 12, .min_lr_ratio = 0.1});
  EXPECT_DOUBLE_EQ(s.lr_factor(1), 0.5);
  EXPECT_DOUBLE_EQ(s.lr_factor(2), 1.0);
  // progress 0.5: cos(pi/2) = 0 -> 0.1 + 0.9 * 0.5
  EXPECT_NEAR(s.lr_factor(7), 0.55, 1e-15);
  // progress 0.2: 0.1 + 0.9 * 0.5 * (1 + cos(0.2 pi))
  EXPECT_NEAR(s.lr_factor(4), 0.1 + 0.45 * (1 + std::cos(0.2 * M_PI)), 1e-15);
  EXPECT_NEAR(s.lr_factor(12), 0.1, 1e-15);
  EXPECT_NEAR(s.lr_factor(50), 0.1, 1e-15);  // stays at the floor past total_steps
  for (int64_t step = 3; step <= 12; ++step) EXPECT_LT(s.lr_factor(step), s.lr_factor(step - 1));
}

TEST(LrSchedule, BadOptionsAreNamed) {
  auto message = [](const aha::policy::LrScheduleOptions& o) {
    try {
      LrSchedule s(o);
    } catch (const aha::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message({.warmup_steps = -1}).find("warmup_steps"), std::string::npos);
  EXPECT_NE(
      message({.decay = LrDecay::cosine, .warmup_steps = 5, .total_steps = 5}).find("total_steps"),
      std::string::npos);
  EXPECT_NE(message({.decay = LrDecay::cosine, .total_steps = 5, .min_lr_ratio = 1.5})
                .find("min_lr_ratio"),
            std::string::npos);
  EXPECT_THROW(aha::policy::parse_lr_decay("linear"), aha::Error);
  EXPECT_EQ(aha::policy::parse_lr_decay("cosine"), LrDecay::cosine);
  EXPECT_THROW(LrSchedule({}).lr_factor(-1), aha::Error);
}
