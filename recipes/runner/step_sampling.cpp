#include "recipes/runner/step_sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/reflection_words.h"
#include "datasets/seeded_random.h"
#include "policy/learner/advantages.h"

namespace aha::recipes {
namespace {

// Mean and (population) standard deviation.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  if (v.empty()) return {0.0, 0.0};
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  return {mean, std::sqrt(var / v.size())};
}

}  // namespace

uint64_t round_seed(uint64_t run_seed, int64_t batch, int64_t round) {
  return mix_seed(mix_seed(run_seed, static_cast<uint64_t>(batch)), static_cast<uint64_t>(round));
}

StepSampling::StepSampling(const RolloutSection& rollout, int64_t target)
    : group_size_(rollout.group_size),
      target_(target),
      max_rounds_(rollout.max_sampling_rounds),
      dynamic_(rollout.dynamic_sampling) {
  require(target > 0, "StepSampling: a step must want at least one group, got " + std::to_string(target));
}

bool StepSampling::may_sample_again(int64_t in_flight) const {
  const int64_t rounds = rounds_ + in_flight;
  return rounds < max_rounds_ && (dynamic_ || rounds == 0);
}

void StepSampling::add_round(std::vector<SampledExample> groups, const std::vector<std::string>& prompts,
                             int64_t version) {
  require(prompts.size() == groups.size(), "StepSampling: " + std::to_string(groups.size()) + " groups for " +
                                               std::to_string(prompts.size()) + " prompts");
  const int64_t G = group_size_;
  std::vector<double> round_totals;
  for (const auto& g : groups) {
    require(static_cast<int64_t>(g.completions.size()) == G && static_cast<int64_t>(g.scores.size()) == G,
            "StepSampling: a group of " + std::to_string(g.completions.size()) + " completions and " +
                std::to_string(g.scores.size()) + " scores, not group_size " + std::to_string(G));
    for (int64_t j = 0; j < G; ++j) {
      round_totals.push_back(g.scores[j].total);
      for (const auto& [name, value] : g.scores[j].components) components_[name].push_back(value);
      lengths_.push_back(static_cast<double>(g.completions[j].tokens.size()));
      truncated_ += g.completions[j].finish_reason == FinishReason::kLength;
      reflecting_ += count_reflection_words(g.completions[j].text, default_reflection_words()) > 0;
      generated_ += static_cast<int64_t>(g.completions[j].tokens.size());
    }
  }
  // Equal rewards in a group: zero advantage for every completion, nothing to learn from.
  const auto all_equal = policy::degenerate_groups(torch::tensor(round_totals, torch::kFloat64), G);
  const auto equal = all_equal.accessor<bool, 1>();
  for (size_t i = 0; i < groups.size(); ++i) {
    const bool degenerate = equal[static_cast<int64_t>(i)];
    degenerate_ += degenerate;
    if (dynamic_ && degenerate) continue;
    kept_.groups.push_back(std::move(groups[i]));
    kept_.prompts.push_back(prompts[i]);
    kept_.versions.push_back(version);
  }
  totals_.insert(totals_.end(), round_totals.begin(), round_totals.end());
  sampled_groups_ += static_cast<int64_t>(groups.size());
  ++rounds_;
}

void StepSampling::keep_first(size_t n) {
  n = std::min(n, kept_.groups.size());
  kept_.groups.resize(n);
  kept_.prompts.resize(n);
  kept_.versions.resize(n);
}

std::vector<std::pair<std::string, double>> StepSampling::metrics(const std::string& accuracy_reward,
                                                                  uint64_t data_epoch) const {
  std::vector<std::pair<std::string, double>> m;
  const auto [reward_mean, reward_std] = mean_std(totals_);
  m.emplace_back("reward/total", reward_mean);
  m.emplace_back("reward/total_std", reward_std);
  for (const auto& [name, values] : components_) m.emplace_back("reward/" + name, mean_std(values).first);
  const auto accuracy = components_.find(accuracy_reward);
  m.emplace_back("train/accuracy", accuracy == components_.end() ? 0.0 : mean_std(accuracy->second).first);
  const double n = static_cast<double>(lengths_.size());
  m.emplace_back("response/length_mean", mean_std(lengths_).first);
  m.emplace_back("response/length_max", lengths_.empty() ? 0.0 : *std::max_element(lengths_.begin(), lengths_.end()));
  m.emplace_back("response/truncated_frac", lengths_.empty() ? 0.0 : static_cast<double>(truncated_) / n);
  // Self-verification phrases (core/reflection_words.h), the R1-Zero sign of reflection.
  m.emplace_back("response/reflection_rate", lengths_.empty() ? 0.0 : static_cast<double>(reflecting_) / n);
  m.emplace_back("data/degenerate_group_frac",
                 sampled_groups_ == 0 ? 0.0 : static_cast<double>(degenerate_) / static_cast<double>(sampled_groups_));
  m.emplace_back("data/sampling_rounds", static_cast<double>(rounds_));
  m.emplace_back("data/epoch", static_cast<double>(data_epoch));
  return m;
}

}  // namespace aha::recipes
