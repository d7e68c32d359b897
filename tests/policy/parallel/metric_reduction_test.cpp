// Step metrics reduced over 2 Gloo ranks (policy/parallel/metric_reduction.h), hand-worked:
// rank 0's rewards are {1, 1} (mean 1, std 0) and rank 1's {3, 3} (mean 3, std 0), so the union
// {1, 1, 3, 3} has mean 2 and std 1; maxima and minima over ranks, perf seconds the slowest
// rank's, throughput summed, a name already global left as each rank had it.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

TEST(MetricReduction, TwoRanksGetTheWorldsFigures) {
  const auto ranks = run_world_results<std::map<std::string, double>>(
      "metrics", 2, {}, [](const RankFiles& files, std::map<std::string, double>& m) {
        auto in = files.numbers();
        std::string name;
        double v = 0;
        while (in >> name >> v) m[name] = v;
      });
  ASSERT_EQ(ranks.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    auto m = ranks[r];
    EXPECT_DOUBLE_EQ(m["reward/total"], 2.0);
    EXPECT_DOUBLE_EQ(m["reward/total_std"], 1.0);
    EXPECT_DOUBLE_EQ(m["response/length_max"], 7.0);
    EXPECT_DOUBLE_EQ(m["ratio_min"], 1.0);
    EXPECT_DOUBLE_EQ(m["perf/step_seconds"], 0.8);
    EXPECT_DOUBLE_EQ(m["perf/tokens_per_s"], 30.0);
    EXPECT_DOUBLE_EQ(m["data/degenerate_group_frac"], 0.25);
    EXPECT_DOUBLE_EQ(m["train/loss"], r == 0 ? 0.25 : 0.75);
  }
}

}  // namespace
}  // namespace aha::parallel::testing
