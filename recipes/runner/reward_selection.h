// Per-data-set reward selection: in a GRPO stage that mixes tasks (DeepSeek-R1's all-scenario
// RL: rule-verified arithmetic beside general prompts scored by instruction rewards), each
// training data set may name the rewards that score its examples:
//
//   "data": {"train": [
//     {"synthetic": "arithmetic", "n": 2000, "seed": 31, "rewards": ["accuracy", "format"]},
//     {"path": "general/lowercase.jsonl", "format": "plain", "rewards": ["format", "lowercase"]}]}
//
// Contract:
// - A data set without "rewards" is scored by every reward of the recipe (as before).
// - The names must be rewards of the recipe, at least one, without repeats; a mistake is an
//   error naming the data set and listing the recipe's rewards.
// - keep_only_rewards leaves a sample exactly as if the recipe had held only the selected
//   rewards: the other rewards' components ("name" and "name.<sub>"), diagnostics and errors
//   are removed and the total is the weighted sum over the selected rewards, in the recipe's
//   order (so a sample selecting every reward keeps the scorer's total bit for bit). Means of a
//   reward's component over a step then cover only the samples it scored.
// - The scorer still scores every reward (local threads or reward servers serve the whole
//   list); the selection is applied to its results, so it works with any reward::Scorer.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "reward/reward_registry.h"
#include "reward/scorer.h"

namespace aha::recipes {

// A training data set spec object with its optional "rewards" list taken out: the spec's JSON
// text without it (for parse_dataset_spec) and the names (empty: every reward). `what` names
// the spec in errors.
std::pair<std::string, std::vector<std::string>> split_reward_selection(const rapidjson::Value& spec,
                                                                        const std::string& what);

// Throws aha::Error (naming `what`) when a name is not one of the specs' or is repeated.
void check_reward_selection(const std::vector<std::string>& names, const std::vector<reward::RewardSpec>& specs,
                            const std::string& what);

// As described above; `names` empty leaves the sample unchanged.
void keep_only_rewards(reward::ScoredSample& sample, const std::vector<reward::RewardSpec>& specs,
                       const std::vector<std::string>& names);

}  // namespace aha::recipes
