#include "recipes/runner/staleness.h"

#include <algorithm>

#include "core/error.h"

namespace aha::recipes {
namespace {

void check(const std::vector<int64_t>& versions, int64_t current, int64_t max_staleness) {
  require(max_staleness >= 0, "algorithm.max_staleness must be >= 0, got " + std::to_string(max_staleness));
  for (size_t i = 0; i < versions.size(); ++i)
    require(versions[i] >= 0 && versions[i] <= current,
            "rollout group " + std::to_string(i) + " carries policy version " + std::to_string(versions[i]) +
                ", but the learner is at version " + std::to_string(current) +
                " (a version must be between 0 and the learner's)");
}

}  // namespace

StalenessFilter filter_stale(const std::vector<int64_t>& versions, int64_t current, int64_t max_staleness) {
  check(versions, current, max_staleness);
  StalenessFilter f;
  for (size_t i = 0; i < versions.size(); ++i) {
    if (current - versions[i] <= max_staleness)
      f.kept.push_back(i);
    else
      ++f.dropped;
  }
  return f;
}

StalenessStats staleness_stats(const std::vector<int64_t>& versions, int64_t current, int64_t max_staleness) {
  check(versions, current, max_staleness);
  StalenessStats s;
  s.histogram.assign(static_cast<size_t>(max_staleness) + 1, 0);
  if (versions.empty()) return s;
  double sum = 0;
  for (int64_t v : versions) {
    const int64_t staleness = current - v;
    require(staleness <= max_staleness, "staleness_stats: a group of staleness " + std::to_string(staleness) +
                                            " exceeds max_staleness " + std::to_string(max_staleness) +
                                            " (filter_stale drops those first)");
    sum += double(staleness);
    s.max = std::max(s.max, staleness);
    ++s.histogram[static_cast<size_t>(staleness)];
  }
  s.mean = sum / double(versions.size());
  return s;
}

std::vector<std::pair<std::string, double>> staleness_metrics(const StalenessStats& stats, int64_t dropped,
                                                              int64_t queue_depth) {
  std::vector<std::pair<std::string, double>> m = {{"async/staleness_mean", stats.mean},
                                                   {"async/staleness_max", double(stats.max)}};
  int64_t total = 0;
  for (int64_t n : stats.histogram) total += n;
  for (size_t s = 0; s < stats.histogram.size(); ++s)
    m.emplace_back("async/staleness_" + std::to_string(s), total > 0 ? double(stats.histogram[s]) / double(total) : 0.0);
  m.emplace_back("async/dropped_groups", double(dropped));
  m.emplace_back("async/queue_depth", double(queue_depth));
  return m;
}

}  // namespace aha::recipes
