// Weight sync (policy/parallel/weight_sync.h): the bucket plan on hand-worked sizes, and the
// broadcast over 3 Gloo ranks (scenarios in weight_sync_scenario.cpp): every receiver ends with
// the root's tensors bit for bit, whatever their dtypes, and the root's version.
#include "policy/parallel/weight_sync.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

TEST(WeightSync, BucketPlanOnHandWorkedSizes) {
  // 16, 8, 16 (bf16), 40 and 4 bytes in buckets of 32, in order: [16 + 8] (+16 would make 40),
  // [16] (+40 too big), [40] alone (larger than a bucket), [4].
  std::vector<torch::Tensor> t = {torch::zeros({4}), torch::zeros({2}), torch::zeros({8}, torch::kBFloat16),
                                  torch::zeros({10}), torch::zeros({1})};
  EXPECT_EQ(plan_buckets(t, 32), (std::vector<std::vector<size_t>>{{0, 1}, {2}, {3}, {4}}));
  // Bytes, not dtypes, decide: 16 + 8 + 16 = 40 fits 40.
  EXPECT_EQ(plan_buckets(t, 40), (std::vector<std::vector<size_t>>{{0, 1, 2}, {3}, {4}}));
  EXPECT_EQ(plan_buckets(t, 1 << 20), (std::vector<std::vector<size_t>>{{0, 1, 2, 3, 4}}));
  EXPECT_EQ(plan_buckets(t, 1).size(), 5u);
  EXPECT_TRUE(plan_buckets({}, 8).empty());
  EXPECT_THROW(plan_buckets(t, 0), Error);
  EXPECT_THROW(plan_buckets({torch::Tensor()}, 8), Error);
}

TEST(WeightSync, ThreeRanksReceiveTheRootsTensorsBitForBit) {
  struct Received {
    std::string verdict;
    int64_t version = 0, buckets = 0, bytes = 0;
  };
  const auto ranks = run_world_results<Received>("weight_sync", 3, {}, [](const RankFiles& files, Received& x) {
    files.numbers() >> x.verdict >> x.version >> x.buckets >> x.bytes;
  });
  ASSERT_EQ(ranks.size(), 3u);
  for (int r = 0; r < 3; ++r) {
    const auto& [verdict, version, buckets, bytes] = ranks[r];
    EXPECT_EQ(verdict, "equal") << "rank " << r;
    EXPECT_EQ(version, 7) << "rank " << r;  // the root's, though the others passed -1
    EXPECT_EQ(buckets, 4) << "rank " << r;  // the plan of the test above
    EXPECT_EQ(bytes, 16 + 8 + 16 + 40 + 4 + 24) << "rank " << r;
  }
}

}  // namespace
}  // namespace aha::parallel::testing
