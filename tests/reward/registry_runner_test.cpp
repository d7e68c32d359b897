// The reward registry (specs by name, weights, JSON, errors) and the runner (weighted totals,
// components, exceptions and timeouts contained per sample).
#include <gtest/gtest.h>

#include "tests/test_util.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "reward/reward_registry.h"
#include "reward/reward_runner.h"

namespace aha::reward {
namespace {

using aha::test::error_of;

TEST(RewardRegistry, ParsesShortLists) {
  auto specs = parse_reward_specs("math_accuracy:1,format:0.5");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "math_accuracy");
  EXPECT_EQ(specs[0].weight, 1.0);
  EXPECT_EQ(specs[1].kind, "format");
  EXPECT_EQ(specs[1].weight, 0.5);
  EXPECT_EQ(parse_reward_specs("format")[0].weight, 1.0);
  EXPECT_NE(error_of([] { parse_reward_specs("format:abc"); }).find("weight of 'format'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_reward_specs("format,format"); }).find("appears twice"), std::string::npos);
  EXPECT_NE(error_of([] { parse_reward_specs("math_accuracy,"); }).find("empty reward name"),
            std::string::npos);
}

TEST(RewardRegistry, ParsesJson) {
  auto specs = parse_reward_specs(
      R"({"rewards": [{"name": "acc", "kind": "math_accuracy", "weight": 2, "timeout_seconds": 3},
                      {"name": "fmt", "kind": "format", "options": {"partial_credit": true}}]})");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].kind, "math_accuracy");
  EXPECT_EQ(specs[0].weight, 2.0);
  EXPECT_EQ(specs[0].timeout_seconds, 3.0);
  EXPECT_EQ(specs[1].options_json, "{\"partial_credit\":true}");
  EXPECT_NE(error_of([] { parse_reward_specs(R"([{"name": "a", "wieght": 1}])"); }).find("'wieght'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_reward_specs(R"([{"name": "a", "timeout_seconds": 0}])");
            }).find("timeout_seconds"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_reward_specs(R"([{"name": "a", "options": 3}])"); }).find("'options'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_reward_specs("no_such_file.json"); }).find("no_such_file.json"),
            std::string::npos);
}

TEST(RewardRegistry, UnknownKindsListTheKnownOnes) {
  RewardSpec spec;
  spec.name = spec.kind = "math_acc";
  std::string message = error_of([&] { create_reward(spec); });
  EXPECT_NE(message.find("unknown reward 'math_acc'"), std::string::npos) << message;
  EXPECT_NE(message.find("math_accuracy, format, language_consistency, length"), std::string::npos)
      << message;
}

// Rewards for the runner tests, built in process.
class ConstantReward : public Reward {
 public:
  explicit ConstantReward(double v) : v_(v) {}
  RewardOutput score(const RewardExample&, const Completion& c) const override {
    RewardOutput out;
    out.value = v_;
    out.components["len"] = static_cast<double>(c.text.size());
    out.diagnostic = "constant";
    return out;
  }
  double v_;
};

class ThrowingReward : public Reward {
 public:
  RewardOutput score(const RewardExample&, const Completion& c) const override {
    if (c.text == "throw") throw Error("bad sample");
    if (c.text == "throw_other") throw 42;
    return RewardOutput{1.0, {}, ""};
  }
};

class SlowReward : public Reward {
 public:
  RewardOutput score(const RewardExample&, const Completion& c) const override {
    if (c.text == "slow") std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return RewardOutput{1.0, {}, ""};
  }
};

RewardSpec spec_named(const std::string& name, double weight, double timeout = 10) {
  RewardSpec s;
  s.name = name;
  s.kind = "test";
  s.weight = weight;
  s.timeout_seconds = timeout;
  return s;
}

std::vector<ScoringInput> inputs_of(const std::vector<std::string>& texts) {
  std::vector<ScoringInput> inputs;
  for (auto& t : texts) inputs.push_back({RewardExample{}, Completion{t, -1}});
  return inputs;
}

TEST(RewardRunner, WeightsAndKeepsEveryComponent) {
  RewardRunner runner({spec_named("a", 1.0), spec_named("b", 0.5)},
                      {std::make_shared<ConstantReward>(0.25), std::make_shared<ConstantReward>(1.0)}, 2);
  auto results = runner.score(inputs_of({"xyz", ""}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_DOUBLE_EQ(results[0].total, 0.25 * 1.0 + 1.0 * 0.5);
  EXPECT_EQ(results[0].components.at("a"), 0.25);
  EXPECT_EQ(results[0].components.at("b"), 1.0);
  EXPECT_EQ(results[0].components.at("a.len"), 3.0);
  EXPECT_EQ(results[1].components.at("b.len"), 0.0);
  EXPECT_EQ(results[0].diagnostics.at("a"), "constant");
  EXPECT_TRUE(results[0].errors.empty());
}

TEST(RewardRunner, ContainsExceptionsPerSample) {
  RewardRunner runner({spec_named("t", 1.0), spec_named("c", 1.0)},
                      {std::make_shared<ThrowingReward>(), std::make_shared<ConstantReward>(2.0)}, 2);
  auto results = runner.score(inputs_of({"ok", "throw", "throw_other"}));
  EXPECT_EQ(results[0].total, 3.0);
  EXPECT_EQ(results[1].total, 2.0);
  EXPECT_EQ(results[1].components.at("t"), 0.0);
  EXPECT_EQ(results[1].errors.at("t"), "bad sample");
  EXPECT_EQ(results[1].diagnostics.at("t"), "error: bad sample");
  EXPECT_EQ(results[2].errors.at("t"), "unknown exception");
  EXPECT_EQ(results[2].components.at("c"), 2.0);
}

TEST(RewardRunner, TimesOutSlowCallsAndGoesOn) {
  RewardRunner runner({spec_named("s", 1.0, 0.2)}, {std::make_shared<SlowReward>()}, 2);
  auto results = runner.score(inputs_of({"slow", "fast", "fast"}));
  EXPECT_EQ(results[0].total, 0.0);
  EXPECT_EQ(results[0].errors.at("s"), "timed out after 0.2 s");
  EXPECT_EQ(results[1].total, 1.0);
  EXPECT_EQ(results[2].total, 1.0);
}

TEST(RewardRunner, ScoresBuiltInsFromSpecs) {
  RewardRunner runner(parse_reward_specs("math_accuracy:1,format:0.5"), 2);
  std::vector<ScoringInput> inputs(2);
  inputs[0].example.gold = "#### 12";
  inputs[0].completion.text = "<think>6+6</think><answer>12</answer>";
  inputs[1].example.gold = "#### 12";
  inputs[1].completion.text = "it is \\boxed{13}";
  auto results = runner.score(inputs);
  EXPECT_DOUBLE_EQ(results[0].total, 1.5);
  EXPECT_DOUBLE_EQ(results[1].total, 0.0);
  EXPECT_EQ(results[1].diagnostics.at("math_accuracy"), "answer '13' gold '12'");
}

}  // namespace
}  // namespace aha::reward
