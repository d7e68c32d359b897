#include "recipes/runner/split_rollout.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/json.h"
#include "core/reflection_words.h"
#include "policy/learner/advantages.h"
#include "recipes/runner/reward_selection.h"

namespace aha::recipes {
namespace {

// Mean and (population) standard deviation, as the stage computes them.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {0.0, 0.0};
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / v.size())};
}

}  // namespace

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

ScoredRollout score_rollout_result(RolloutResult result, const std::vector<Example>& examples, int64_t G,
                                   reward::Scorer& scorer, const std::vector<reward::RewardSpec>& specs,
                                   const std::vector<std::vector<std::string>>& reward_names,
                                   const std::string& accuracy_reward, uint64_t data_epoch) {
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
  ScoredRollout out;
  std::map<std::string, std::vector<double>> components;
  std::vector<double> totals, lengths;
  int64_t truncated = 0, reflecting = 0;
  for (size_t i = 0; i < result.groups.size(); ++i) {
    SampledExample g;
    g.prompt_ids = std::move(result.groups[i].prompt_ids);
    g.completions = std::move(result.groups[i].completions);
    g.scores.assign(std::make_move_iterator(scores.begin() + static_cast<int64_t>(i) * G),
                    std::make_move_iterator(scores.begin() + static_cast<int64_t>(i + 1) * G));
    for (int64_t j = 0; j < G; ++j) {
      totals.push_back(g.scores[j].total);
      for (const auto& [name, value] : g.scores[j].components) components[name].push_back(value);
      lengths.push_back(static_cast<double>(g.completions[j].tokens.size()));
      truncated += g.completions[j].finish_reason == FinishReason::kLength;
      reflecting += count_reflection_words(g.completions[j].text, default_reflection_words()) > 0;
      out.generated += static_cast<int64_t>(g.completions[j].tokens.size());
    }
    out.groups.push_back(std::move(g));
  }
  const int64_t degenerate = policy::degenerate_groups(torch::tensor(totals, torch::kFloat64), G).sum().item<int64_t>();
  auto& m = out.metrics;
  const auto [reward_mean, reward_std] = mean_std(totals);
  m.emplace_back("reward/total", reward_mean);
  m.emplace_back("reward/total_std", reward_std);
  for (const auto& [name, values] : components) m.emplace_back("reward/" + name, mean_std(values).first);
  m.emplace_back("train/accuracy", mean_std(components[accuracy_reward]).first);
  m.emplace_back("response/length_mean", mean_std(lengths).first);
  m.emplace_back("response/length_max", lengths.empty() ? 0.0 : *std::max_element(lengths.begin(), lengths.end()));
  m.emplace_back("response/truncated_frac", lengths.empty() ? 0.0 : static_cast<double>(truncated) / lengths.size());
  // Self-verification phrases (core/reflection_words.h), the R1-Zero sign of reflection.
  m.emplace_back("response/reflection_rate", lengths.empty() ? 0.0 : static_cast<double>(reflecting) / lengths.size());
  m.emplace_back("data/degenerate_group_frac",
                 out.groups.empty() ? 0.0 : static_cast<double>(degenerate) / static_cast<double>(out.groups.size()));
  m.emplace_back("data/sampling_rounds", 1.0);
  m.emplace_back("data/epoch", static_cast<double>(data_epoch));
  return out;
}

}  // namespace aha::recipes
