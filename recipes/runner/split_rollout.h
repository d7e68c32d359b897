// The GRPO stage's glue to the split layout's rollout workers (rollout_controller.h): what a
// worker is told (its configuration), and a worker's result turned into the stage's scored
// groups and rollout metrics exactly as one process's sampling makes them (sampling.h's
// sample_and_score scores; the stage's reward/, response/ and data/ figures of one round).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "datasets/example.h"
#include "recipes/runner/recipe.h"
#include "recipes/runner/rollout_wire.h"
#include "recipes/runner/sampling.h"
#include "reward/scorer.h"

namespace aha::recipes {

// Worker i's configuration JSON (rollout_worker.h): the recipe, the model, its device ("auto":
// the learner's kind; on GPUs the ones after the learner's device in turn, of `gpus`), and the
// sampling values the run resolved (temperature, top_p, top_k, EOS ids).
std::string rollout_worker_config(const Recipe& recipe, const std::filesystem::path& model_dir,
                                  const torch::Device& learner_device, int gpus, const std::vector<int64_t>& eos_ids,
                                  int worker);

struct ScoredRollout {
  std::vector<SampledExample> groups;  // in the examples' order
  std::vector<std::pair<std::string, double>> metrics;
  int64_t generated = 0;  // completion tokens
};

// Scores `result` (one group per example, group_size completions each) with `scorer`, then
// keeps example i's selected rewards (reward_names[i] of `specs`: its data set's "rewards",
// reward_selection.h; empty, or reward_names empty: every reward). Throws aha::Error when the
// result's shape is not the task's. data_epoch is the data/epoch figure.
ScoredRollout score_rollout_result(RolloutResult result, const std::vector<Example>& examples, int64_t group_size,
                                   reward::Scorer& scorer, const std::vector<reward::RewardSpec>& specs,
                                   const std::vector<std::vector<std::string>>& reward_names,
                                   const std::string& accuracy_reward, uint64_t data_epoch);

}  // namespace aha::recipes
