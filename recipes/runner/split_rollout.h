// The GRPO stage's glue to the split layout's rollout workers (rollout_controller.h): what a
// worker is told (its configuration), and a worker's result (one sampling round of a step)
// turned into scored groups exactly as one process's sampling scores them (sampling.h's
// sample_and_score), for the step's StepSampling (step_sampling.h) to keep and count as it
// counts one process's rounds.
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

// Scores `result` (one group per example, group_size completions each) with `scorer`, then
// keeps example i's selected rewards (reward_names[i] of `specs`: its data set's "rewards",
// reward_selection.h; empty, or reward_names empty: every reward). Returns the groups in the
// examples' order. Throws aha::Error when the result's shape is not the task's.
std::vector<SampledExample> score_rollout_result(RolloutResult result, const std::vector<Example>& examples,
                                                 int64_t group_size, reward::Scorer& scorer,
                                                 const std::vector<reward::RewardSpec>& specs,
                                                 const std::vector<std::vector<std::string>>& reward_names);

}  // namespace aha::recipes
