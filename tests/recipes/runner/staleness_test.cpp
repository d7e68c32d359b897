// The staleness filter and figures of asynchronous GRPO (recipes/runner/staleness.h), on
// hand-worked versions.
#include "recipes/runner/staleness.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"

namespace aha::recipes {
namespace {

TEST(Staleness, DropsGroupsOlderThanTheBoundAndCountsThem) {
  // Learner at version 5, bound 2: staleness 0, 2, 1, 3, 0 -> the fourth (version 2) is dropped.
  auto f = filter_stale({5, 3, 4, 2, 5}, 5, 2);
  EXPECT_EQ(f.kept, (std::vector<size_t>{0, 1, 2, 4}));
  EXPECT_EQ(f.dropped, 1);
  // Bound 0 keeps only the learner's own version.
  auto on_policy = filter_stale({5, 4, 5}, 5, 0);
  EXPECT_EQ(on_policy.kept, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(on_policy.dropped, 1);
  EXPECT_TRUE(filter_stale({}, 0, 0).kept.empty());
}

TEST(Staleness, HistogramMeanAndMetrics) {
  // The kept groups above: staleness 0, 2, 1, 0.
  auto s = staleness_stats({5, 3, 4, 5}, 5, 2);
  EXPECT_DOUBLE_EQ(s.mean, 0.75);
  EXPECT_EQ(s.max, 2);
  EXPECT_EQ(s.histogram, (std::vector<int64_t>{2, 1, 1}));
  std::map<std::string, double> m;
  for (const auto& [name, value] : staleness_metrics(s, 1, 3)) m[name] = value;
  EXPECT_EQ(m.size(), 7u);
  EXPECT_DOUBLE_EQ(m["async/staleness_mean"], 0.75);
  EXPECT_DOUBLE_EQ(m["async/staleness_max"], 2);
  EXPECT_DOUBLE_EQ(m["async/staleness_0"], 0.5);
  EXPECT_DOUBLE_EQ(m["async/staleness_1"], 0.25);
  EXPECT_DOUBLE_EQ(m["async/staleness_2"], 0.25);
  EXPECT_DOUBLE_EQ(m["async/dropped_groups"], 1);
  EXPECT_DOUBLE_EQ(m["async/queue_depth"], 3);
  auto none = staleness_stats({}, 3, 1);
  EXPECT_EQ(none.mean, 0);
  EXPECT_EQ(none.histogram, (std::vector<int64_t>{0, 0}));
}

TEST(Staleness, RefusesVersionsFromTheFutureAndBadBounds) {
  try {
    filter_stale({1, 7}, 5, 2);
    ADD_FAILURE() << "a version newer than the learner's was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group 1 carries policy version 7"), std::string::npos) << e.what();
  }
  EXPECT_THROW(filter_stale({-1}, 5, 2), Error);
  EXPECT_THROW(filter_stale({5}, 5, -1), Error);
  EXPECT_THROW(staleness_stats({1}, 5, 2), Error);  // staleness 4 > 2: filter first
}

}  // namespace
}  // namespace aha::recipes
