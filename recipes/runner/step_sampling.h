// One training step's sampling rounds and what they keep (recipe rollout.dynamic_sampling,
// DAPO's dynamic sampling), whoever samples: the GRPO stage in this process (grpo_stage.cpp) and
// the split layout's rollout workers (split_rollout.h) both go through it, so that a split run
// draws the same prompts in the same order, keeps the same groups and records the same figures
// as a colocated one.
//
// A step wants `target` groups. Round 0 samples `target` prompts. Without dynamic sampling that
// is the only round and every group is kept. With it, a group whose group_size rewards are all
// equal carries no advantage and is dropped, and each further round samples as many new prompts
// as groups are still missing (shortfall()), until none is or max_sampling_rounds rounds ran.
// Round r of the step whose seeds are batch b's samples with round_seed(seed, b, r).
//
// The figures (metrics()) cover every group sampled in every round, dropped ones included; the
// learner trains on the kept groups only.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recipes/runner/recipe.h"
#include "recipes/runner/sampling.h"

namespace aha::recipes {

// The sampling seed of round `round` of the step whose seeds are batch `batch`'s.
uint64_t round_seed(uint64_t run_seed, int64_t batch, int64_t round);

struct KeptGroups {
  std::vector<SampledExample> groups;
  std::vector<std::string> prompts;  // groups[i]'s prompt text
  std::vector<int64_t> versions;     // the policy version that sampled groups[i]
};

class StepSampling {
 public:
  // rollout: group_size, dynamic_sampling, max_sampling_rounds. target > 0.
  StepSampling(const RolloutSection& rollout, int64_t target);

  // Whether one more round may be sampled after the rounds added and `in_flight` more being
  // sampled: the round limit, and without dynamic sampling round 0 only. Whether it is needed
  // is shortfall() > 0 (data parallel: any rank's, grpo_stage.cpp).
  bool may_sample_again(int64_t in_flight = 0) const;
  int64_t shortfall() const { return target_ - static_cast<int64_t>(kept_.groups.size()); }
  int64_t rounds() const { return rounds_; }

  // One round's scored groups (group_size completions and scores each), prompts[i] being
  // groups[i]'s, sampled by policy `version`. Keeps those that carry an advantage (all, without
  // dynamic sampling), in order. Throws aha::Error when the shapes disagree.
  void add_round(std::vector<SampledExample> groups, const std::vector<std::string>& prompts, int64_t version);

  KeptGroups& kept() { return kept_; }
  // Data parallel: every rank trains on as many groups as the rank that kept the fewest.
  void keep_first(size_t n);

  // reward/total (and _std), reward/<component>, train/accuracy (the accuracy reward's mean),
  // response/length_mean, _max, truncated_frac, reflection_rate, data/degenerate_group_frac,
  // data/sampling_rounds, and data/epoch = data_epoch (the data's epoch after the step's draws).
  std::vector<std::pair<std::string, double>> metrics(const std::string& accuracy_reward, uint64_t data_epoch) const;
  int64_t generated() const { return generated_; }  // completion tokens of every round

 private:
  int64_t group_size_, target_, max_rounds_;
  bool dynamic_;
  int64_t rounds_ = 0;
  KeptGroups kept_;
  // Over every group sampled:
  std::map<std::string, std::vector<double>> components_;
  std::vector<double> totals_, lengths_;
  int64_t truncated_ = 0, reflecting_ = 0, degenerate_ = 0, sampled_groups_ = 0, generated_ = 0;
};

}  // namespace aha::recipes
