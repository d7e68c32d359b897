// Per-data-set reward selection (reward_selection.h): a sample keeps exactly the selected
// rewards' components with their weighted total (hand-worked values), recipes name bad
// selections, and a GRPO run over two data sets scores each with its own rewards only.
#include "recipes/runner/reward_selection.h"

#include <gtest/gtest.h>

#include "core/files.h"
#include "core/run_store.h"
#include "policy/model/model_io.h"
#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/recipe.h"
#include "tests/recipes/runner/recipes_test_util.h"
#include "tests/test_util.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

std::vector<reward::RewardSpec> three_specs() {
  std::vector<reward::RewardSpec> specs(3);
  specs[0].name = "a";
  specs[0].weight = 1.0;
  specs[1].name = "b";
  specs[1].weight = 0.5;
  specs[2].name = "c";
  specs[2].weight = 2.0;
  return specs;
}

reward::ScoredSample scored() {
  reward::ScoredSample s;
  s.components = {{"a", 1.0}, {"a.sub", 3.0}, {"b", 0.4}, {"b.sub", 7.0}, {"c", 0.25}};
  s.total = 1.0 * 1.0 + 0.5 * 0.4 + 2.0 * 0.25;  // 1.7
  s.diagnostics = {{"a", "da"}, {"b", "db"}, {"c", "error: boom"}};
  s.errors = {{"c", "boom"}};
  return s;
}

TEST(KeepOnlyRewards, KeepsTheSelectedComponentsAndTheirWeightedTotal) {
  auto s = scored();
  keep_only_rewards(s, three_specs(), {"c", "a"});
  EXPECT_DOUBLE_EQ(s.total, 1.0 * 1.0 + 2.0 * 0.25);  // 1.5
  EXPECT_EQ(s.components, (std::map<std::string, double>{{"a", 1.0}, {"a.sub", 3.0}, {"c", 0.25}}));
  EXPECT_EQ(s.diagnostics, (std::map<std::string, std::string>{{"a", "da"}, {"c", "error: boom"}}));
  EXPECT_EQ(s.errors.size(), 1u);

  auto only_b = scored();
  keep_only_rewards(only_b, three_specs(), {"b"});
  EXPECT_DOUBLE_EQ(only_b.total, 0.2);
  EXPECT_EQ(only_b.components, (std::map<std::string, double>{{"b", 0.4}, {"b.sub", 7.0}}));
  EXPECT_TRUE(only_b.errors.empty());  // c's error is no longer the sample's

  // No selection: the scorer's sample as it was; every reward selected: the same total.
  auto untouched = scored();
  keep_only_rewards(untouched, three_specs(), {});
  EXPECT_EQ(untouched.components.size(), 5u);
  EXPECT_DOUBLE_EQ(untouched.total, 1.7);
  auto all = scored();
  keep_only_rewards(all, three_specs(), {"a", "b", "c"});
  EXPECT_EQ(all.components.size(), 5u);
  EXPECT_EQ(all.total, untouched.total);
}

TEST(KeepOnlyRewards, ARewardWhoseNameLooksLikeASubComponentStays) {
  std::vector<reward::RewardSpec> specs(2);
  specs[0].name = "a";
  specs[1].name = "a.b";
  specs[1].weight = 3.0;
  reward::ScoredSample s;
  s.components = {{"a", 1.0}, {"a.b", 0.5}, {"a.x", 2.0}};
  keep_only_rewards(s, specs, {"a.b"});
  EXPECT_EQ(s.components, (std::map<std::string, double>{{"a.b", 0.5}}));
  EXPECT_DOUBLE_EQ(s.total, 1.5);
}

std::string recipe_with_train(const std::string& train) {
  return R"({"name": "sel", "model": {"path": "m"}, "template": "chatml",
    "data": {"train": )" + train + R"(},
    "rewards": [{"name": "accuracy", "kind": "math_accuracy"}, {"name": "short", "kind": "max_words", "options": {"max_words": 3}}]})";
}

TEST(RewardSelectionRecipe, ReadsEachDataSetsRewardsAndNamesMistakes) {
  auto r = parse_recipe(recipe_with_train(R"([{"synthetic": "arithmetic", "n": 4, "seed": 1, "rewards": ["accuracy"]},
                                              {"synthetic": "arithmetic", "n": 4, "seed": 2}])"),
                        "r.json");
  ASSERT_EQ(r.train_rewards.size(), 2u);
  EXPECT_EQ(r.train_rewards[0], std::vector<std::string>{"accuracy"});
  EXPECT_TRUE(r.train_rewards[1].empty());
  EXPECT_EQ(r.train_data[0].n, 4u);

  auto error = [](const std::string& train) {
    return test::error_of([&] { parse_recipe(recipe_with_train(train), "r.json"); });
  };
  auto e = error(R"([{"synthetic": "arithmetic", "n": 4, "seed": 1}, {"synthetic": "arithmetic", "n": 4, "seed": 2, "rewards": ["acuracy"]}])");
  EXPECT_NE(e.find("data.train.1: 'rewards' names 'acuracy', which is not a reward of the recipe (rewards: accuracy, short)"),
            std::string::npos)
      << e;
  e = error(R"({"synthetic": "arithmetic", "n": 4, "seed": 1, "rewards": ["short", "short"]})");
  EXPECT_NE(e.find("data.train: 'rewards' names 'short' twice"), std::string::npos) << e;
  e = error(R"({"synthetic": "arithmetic", "n": 4, "seed": 1, "rewards": []})");
  EXPECT_NE(e.find("'rewards' must be a non-empty list"), std::string::npos) << e;
  e = error(R"({"synthetic": "arithmetic", "n": 4, "seed": 1, "rewards": [1]})");
  EXPECT_NE(e.find("'rewards' must be a list of reward names"), std::string::npos) << e;
}

TEST(RewardSelectionRun, EachDataSetIsScoredByItsOwnRewards) {
  torch::set_num_threads(1);
  const fs::path work = fs::path(AHA_BINARY_DIR) / "reward-selection-run";
  remove_tree(work);
  fs::create_directories(work);
  save_model(*init_model(test::tiny_config(), 3), work / "model", {.copy_extras_from = test::tokenizer_dir()});
  std::string general;
  for (int i = 0; i < 10; ++i)
    general += R"({"id": "g)" + std::to_string(i) + R"(", "prompt": "Say hello number )" + std::to_string(i) +
               R"(.", "answer": "", "kind": "custom"})" + "\n";
  write_file_atomic(work / "general.jsonl", general);
  auto r = parse_recipe(R"({"name": "sel-run", "model": {"path": "m", "device": "cpu"}, "template": "chatml",
    "data": {"train": [{"synthetic": "arithmetic", "n": 10, "seed": 1, "difficulty": 1, "rewards": ["accuracy"]},
                       {"path": "general.jsonl", "format": "plain", "rewards": ["short"]}]},
    "rewards": [{"name": "accuracy", "kind": "math_accuracy", "weight": 2.0},
                {"name": "short", "kind": "max_words", "weight": 0.5, "options": {"max_words": 3}}],
    "rollout": {"prompts_per_step": 6, "group_size": 2, "max_new_tokens": 6},
    "algorithm": {"lr": 0.01}, "schedule": {"steps": 2, "seed": 5},
    "logging": {"keep_samples_last_steps": 2, "keep_samples_every": 1}})",
                        work / "recipe.json", {"model.path=" + (work / "model").string()});
  RunOptions o;
  o.run_dir = work / "run";
  o.progress = false;
  run_grpo(r, o);
  RunStore store(work / "run" / "run.db", {.read_only = true});
  const int64_t stage = store.stages().at(0).id;
  int general_samples = 0, arithmetic_samples = 0;
  for (int64_t step = 1; step <= 2; ++step)
    for (const auto& s : store.samples(stage, step)) {
      std::map<std::string, double> c(s.reward_components.begin(), s.reward_components.end());
      const bool is_general = s.prompt.rfind("Say hello", 0) == 0;
      (is_general ? general_samples : arithmetic_samples)++;
      const std::string own = is_general ? "short" : "accuracy", other = is_general ? "accuracy" : "short";
      ASSERT_TRUE(c.count(own)) << s.prompt;
      for (const auto& [name, value] : c) EXPECT_NE(name.rfind(other, 0), 0u) << s.prompt << ": " << name;
      EXPECT_DOUBLE_EQ(s.reward, (is_general ? 0.5 : 2.0) * c[own]) << s.prompt;
    }
  EXPECT_GT(general_samples, 0);  // both data sets were drawn (12 of 20 prompts over two steps)
  EXPECT_GT(arithmetic_samples, 0);
  remove_tree(work);
}

}  // namespace
}  // namespace aha::recipes
