// A step's sampling rounds (recipes/runner/step_sampling.h, DAPO's dynamic sampling) on
// hand-made groups: which are kept, when another round may run and how many prompts it needs,
// and the figures over everything sampled.
#include "recipes/runner/step_sampling.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"

namespace aha::recipes {
namespace {

// A group of completions with these rewards (component "accuracy" = total) and these token
// counts, the first one cut off at the token limit.
SampledExample group(const std::vector<double>& rewards, const std::vector<int64_t>& lengths) {
  SampledExample g;
  g.prompt_ids = {1, 2};
  for (size_t j = 0; j < rewards.size(); ++j) {
    Completion c;
    c.sample_index = static_cast<int64_t>(j);
    c.tokens.assign(static_cast<size_t>(lengths[j]), 7);
    c.logprobs.assign(c.tokens.size(), -1.0f);
    c.text = j == 0 ? "wait, let me check" : "x";
    c.finish_reason = j == 0 ? FinishReason::kLength : FinishReason::kEos;
    g.completions.push_back(std::move(c));
    reward::ScoredSample s;
    s.total = rewards[j];
    s.components["accuracy"] = rewards[j];
    g.scores.push_back(std::move(s));
  }
  return g;
}

RolloutSection rollout(bool dynamic, int64_t max_rounds) {
  RolloutSection r;
  r.group_size = 2;
  r.dynamic_sampling = dynamic;
  r.max_sampling_rounds = max_rounds;
  return r;
}

std::map<std::string, double> as_map(const std::vector<std::pair<std::string, double>>& m) {
  return {m.begin(), m.end()};
}

TEST(StepSampling, DropsUniformGroupsAndAsksForAsManyPromptsAsAreMissing) {
  StepSampling s(rollout(true, 3), 3);
  EXPECT_TRUE(s.may_sample_again());
  EXPECT_EQ(s.shortfall(), 3);
  // Round 0: the first and last groups agree within themselves, so only "b" is kept.
  s.add_round({group({1, 1}, {2, 4}), group({0, 1}, {2, 2}), group({0, 0}, {6, 2})}, {"a", "b", "c"}, 4);
  EXPECT_EQ(s.kept().prompts, (std::vector<std::string>{"b"}));
  EXPECT_EQ(s.shortfall(), 2);
  EXPECT_TRUE(s.may_sample_again());
  EXPECT_TRUE(s.may_sample_again(/*in_flight=*/1));  // round 1 out, round 2 still allowed
  // Round 1, sampled by a newer policy: both informative.
  s.add_round({group({1, 0}, {4, 4}), group({0.5, 0}, {2, 2})}, {"d", "e"}, 5);
  EXPECT_EQ(s.kept().prompts, (std::vector<std::string>{"b", "d", "e"}));
  EXPECT_EQ(s.kept().versions, (std::vector<int64_t>{4, 5, 5}));
  EXPECT_EQ(s.kept().groups.size(), 3u);
  EXPECT_EQ(s.shortfall(), 0);
  EXPECT_EQ(s.rounds(), 2);

  // Over all 10 completions: rewards sum 4.5, lengths sum 30 (max 6), 5 cut off, 5 reflecting;
  // 2 of 5 groups uniform.
  auto m = as_map(s.metrics("accuracy", 7));
  EXPECT_DOUBLE_EQ(m["reward/total"], 0.45);
  EXPECT_DOUBLE_EQ(m["reward/accuracy"], 0.45);
  EXPECT_DOUBLE_EQ(m["train/accuracy"], 0.45);
  EXPECT_DOUBLE_EQ(m["response/length_mean"], 3.0);
  EXPECT_DOUBLE_EQ(m["response/length_max"], 6.0);
  EXPECT_DOUBLE_EQ(m["response/truncated_frac"], 0.5);
  EXPECT_DOUBLE_EQ(m["response/reflection_rate"], 0.5);
  EXPECT_DOUBLE_EQ(m["data/degenerate_group_frac"], 0.4);
  EXPECT_DOUBLE_EQ(m["data/sampling_rounds"], 2.0);
  EXPECT_DOUBLE_EQ(m["data/epoch"], 7.0);
  EXPECT_EQ(s.generated(), 30);
}

TEST(StepSampling, TheRoundLimitEndsTheRefill) {
  StepSampling s(rollout(true, 2), 2);
  s.add_round({group({0, 0}, {1, 1}), group({1, 1}, {1, 1})}, {"a", "b"}, 0);
  EXPECT_TRUE(s.may_sample_again());
  EXPECT_FALSE(s.may_sample_again(/*in_flight=*/1));  // the refill round out would be the last
  s.add_round({group({0, 0}, {1, 1}), group({0, 1}, {1, 1})}, {"c", "d"}, 0);
  EXPECT_FALSE(s.may_sample_again());
  EXPECT_EQ(s.shortfall(), 1);  // still missing one: the step trains on fewer groups
  EXPECT_EQ(s.kept().prompts, (std::vector<std::string>{"d"}));
  EXPECT_DOUBLE_EQ(as_map(s.metrics("accuracy", 0))["data/sampling_rounds"], 2.0);
}

TEST(StepSampling, WithoutDynamicSamplingOneRoundKeepsEveryGroup) {
  StepSampling s(rollout(false, 3), 2);
  EXPECT_FALSE(s.may_sample_again(/*in_flight=*/1));
  s.add_round({group({1, 1}, {1, 1}), group({0, 1}, {1, 1})}, {"a", "b"}, 0);
  EXPECT_FALSE(s.may_sample_again());
  EXPECT_EQ(s.kept().prompts, (std::vector<std::string>{"a", "b"}));
  auto m = as_map(s.metrics("accuracy", 0));
  EXPECT_DOUBLE_EQ(m["data/degenerate_group_frac"], 0.5);  // counted, though kept
  EXPECT_DOUBLE_EQ(m["data/sampling_rounds"], 1.0);
  s.keep_first(1);
  EXPECT_EQ(s.kept().prompts, (std::vector<std::string>{"a"}));
  EXPECT_EQ(s.kept().versions.size(), 1u);
}

TEST(StepSampling, RefusesMismatchedRounds) {
  StepSampling s(rollout(true, 3), 2);
  EXPECT_THROW(s.add_round({group({0, 1}, {1, 1})}, {"a", "b"}, 0), Error);
  EXPECT_THROW(s.add_round({group({0, 1, 1}, {1, 1, 1})}, {"a"}, 0), Error);  // not group_size
  EXPECT_THROW(StepSampling(rollout(true, 3), 0), Error);
  // Each round of each step has its own seed.
  EXPECT_NE(round_seed(5, 0, 0), round_seed(5, 0, 1));
  EXPECT_NE(round_seed(5, 0, 1), round_seed(5, 1, 0));
}

}  // namespace
}  // namespace aha::recipes
