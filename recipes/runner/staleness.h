// Staleness of rollouts in asynchronous GRPO (recipe algorithm.max_staleness = k): a group
// sampled by policy version v and trained by the learner at version c (the number of learner
// updates applied so far) has staleness c - v. Groups with staleness > k are dropped before
// training (and counted); the rest are kept in their order. The stage records, per step, the
// mean and largest staleness of the groups trained on and the histogram over 0..k
// (off_policy_correction.h has the loss that corrects for it).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace aha::recipes {

struct StalenessFilter {
  std::vector<size_t> kept;  // indices into the versions given, in order
  int64_t dropped = 0;
};

// versions[i]: the policy version that produced group i. Throws aha::Error when a version is
// negative or newer than current (a rollout from a policy the learner has not made), or when
// max_staleness < 0.
StalenessFilter filter_stale(const std::vector<int64_t>& versions, int64_t current, int64_t max_staleness);

// Of the groups trained on (all within the bound): mean and largest staleness, and
// histogram[s] = how many have staleness s, for s = 0..max_staleness. Empty versions: zeros.
struct StalenessStats {
  double mean = 0;
  int64_t max = 0;
  std::vector<int64_t> histogram;
};
StalenessStats staleness_stats(const std::vector<int64_t>& versions, int64_t current, int64_t max_staleness);

// The run-store metrics of one step: async/staleness_mean, async/staleness_max,
// async/staleness_<s> (share of the step's groups with staleness s), async/dropped_groups
// (this step's), async/queue_depth.
std::vector<std::pair<std::string, double>> staleness_metrics(const StalenessStats& stats, int64_t dropped,
                                                              int64_t queue_depth);

}  // namespace aha::recipes
