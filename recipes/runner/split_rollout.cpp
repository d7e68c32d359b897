#include "recipes/runner/split_rollout.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"
#include "core/json.h"
#include "recipes/runner/reward_selection.h"

namespace aha::recipes {

std::string rollout_worker_config(const Recipe& recipe, const std::filesystem::path& model_dir,
                                  const torch::Device& learner_device, int gpus, const std::vector<int64_t>& eos_ids,
                                  int worker) {
  rapidjson::Document c(rapidjson::kObjectType);
  auto& a = c.GetAllocator();
  auto str = [&](const std::string& v) { return rapidjson::Value(v.c_str(), a); };
  c.AddMember("recipe", str(recipe.canonical_json), a);
  c.AddMember("recipe_file", str(recipe.file.string()), a);
  c.AddMember("model_dir", str(model_dir.string()), a);
  std::string device = "cpu";
  if (recipe.layout.worker_device == "auto" && gpus > 0)
    device = "cuda:" + std::to_string((std::max<int>(0, learner_device.index()) + 1 + worker) % gpus);
  c.AddMember("device", str(device), a);
  c.AddMember("temperature", recipe.rollout.temperature, a);  // as resolved (use_model_generation_config)
  c.AddMember("top_p", recipe.rollout.top_p, a);
  c.AddMember("top_k", static_cast<int64_t>(recipe.rollout.top_k), a);
  rapidjson::Value eos(rapidjson::kArrayType);
  for (int64_t id : eos_ids) eos.PushBack(id, a);
  c.AddMember("eos", eos, a);
  return json::to_string(c);
}

std::vector<SampledExample> score_rollout_result(RolloutResult result, const std::vector<Example>& examples,
                                                 int64_t G, reward::Scorer& scorer,
                                                 const std::vector<reward::RewardSpec>& specs,
                                                 const std::vector<std::vector<std::string>>& reward_names) {
  require(reward_names.empty() || reward_names.size() == examples.size(),
          "score_rollout_result: " + std::to_string(reward_names.size()) + " reward selections for " +
              std::to_string(examples.size()) + " examples");
  require(result.groups.size() == examples.size(),
          "rollout worker " + std::to_string(result.worker) + " returned " + std::to_string(result.groups.size()) +
              " groups for " + std::to_string(examples.size()) + " prompts");
  // Scored as sample_and_score scores (sampling.h).
  std::vector<reward::ScoringInput> inputs;
  for (size_t i = 0; i < result.groups.size(); ++i) {
    require(static_cast<int64_t>(result.groups[i].completions.size()) == G,
            "rollout worker " + std::to_string(result.worker) + " returned a group of " +
                std::to_string(result.groups[i].completions.size()) + " completions, not group_size " + std::to_string(G));
    const auto example = to_reward_example(examples[i]);
    for (const auto& c : result.groups[i].completions) {
      reward::ScoringInput input;
      input.example = example;
      input.completion.text = c.text;
      input.completion.num_tokens = static_cast<int64_t>(c.tokens.size());
      inputs.push_back(std::move(input));
    }
  }
  auto scores = scorer.score(std::move(inputs));
  // As one process does after sample_and_score (grpo_stage.cpp): a data set that names its
  // rewards is scored by those alone.
  if (!reward_names.empty())
    for (size_t k = 0; k < scores.size(); ++k) keep_only_rewards(scores[k], specs, reward_names[k / size_t(G)]);
  std::vector<SampledExample> groups;
  for (size_t i = 0; i < result.groups.size(); ++i) {
    SampledExample g;
    g.prompt_ids = std::move(result.groups[i].prompt_ids);
    g.completions = std::move(result.groups[i].completions);
    g.scores.assign(std::make_move_iterator(scores.begin() + static_cast<int64_t>(i) * G),
                    std::make_move_iterator(scores.begin() + static_cast<int64_t>(i + 1) * G));
    groups.push_back(std::move(g));
  }
  return groups;
}

}  // namespace aha::recipes
