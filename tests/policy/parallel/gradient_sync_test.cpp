// Gradient all-reduce overlapped with backward, on 2 Gloo ranks (scenarios.cpp grad_average):
// hand-worked gradients. Rank 0: micro-batch 1 gives a [1, 2], b [1, 1, 1]; micro-batch 2
// (armed) b [2, 0, 0]. Rank 1: a [3, -4], b [0, 2, 4]; then b [0, 0, 2]. Accumulated: rank 0
// a [1, 2], b [3, 1, 1]; rank 1 a [3, -4], b [0, 2, 6]; averaged: a [2, -1], b [1.5, 1.5, 3.5].
// And a model of bf16 and float32 parameters on 2 and 3 ranks (scenarios.cpp grad_mixed,
// gradient_sync_run.h), all-reduced or reduced to ZeRO-2's shards: the sums worked out here, each
// dtype summed in its own (bf16 in bf16), and the bytes given to the collectives from the layout.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/policy/parallel/gradient_sync_run.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

TEST(GradientSync, TwoRanksAverageTheAccumulatedGradients) {
  struct Averaged {
    int64_t buckets = 0, during_backward = 0;
    std::vector<float> g = std::vector<float>(5);
  };
  const auto ranks = run_world_results<Averaged>("grad_average", 2, {}, [](const RankFiles& files, Averaged& x) {
    auto in = files.numbers();
    in >> x.buckets >> x.during_backward;
    for (auto& v : x.g) in >> v;
  });
  ASSERT_EQ(ranks.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    const auto& [buckets, during_backward, g] = ranks[r];
    // Buckets of 12 bytes: b (3 floats) alone, then a. b's bucket is ready inside the armed
    // backward and launched there; a gets no gradient in it and goes at finish().
    EXPECT_EQ(buckets, 2);
    EXPECT_EQ(during_backward, 1);
    const std::vector<float> expected = {2, -1, 1.5, 1.5, 3.5};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_FLOAT_EQ(g[i], expected[i]) << "rank " << r << " value " << i;
  }
}

// A bf16 model with float32 parameters among its bf16 ones (gradient_sync_run.h), summed on 2
// and 3 ranks, by all-reduce or ZeRO-2's reduces to the shards, in buckets of 4 bytes (each
// parameter alone) and of 1 MiB (p5 and p4 share one; every dtype change starts another).
struct MixedCase {
  int world;
  bool zero2;
  int64_t bucket_bytes;
};

struct MixedRank {
  int64_t buckets = 0, during_backward = 0, reduced_bytes = 0, grads_left = 0;
  std::vector<torch::Tensor> grads;  // all-reduce: each parameter's, in its dtype
  torch::Tensor shard;               // ZeRO-2: the rank's range of the reduced gradient
};

// The sums over the ranks, worked out here: element by element in double, exact, then in the
// parameter's dtype. Element 0 of p0 and p1 sums kMixedSpecial: 1.251953125 on 2 ranks, which
// bf16 rounds to 1.25 however it is summed; 1.3798828125 on 3, exact in float32 (p1), while p0's
// bf16 sum rounds to bf16 after each addition: 1.375 in every order of the three (1 + 0.2519... =
// 1.25, + 0.1279... = 1.375; 0.2519... + 0.1279... = 0.37890625 (a tie, to even), + 1 = 1.375;
// 1 + 0.1279... = 1.125, + 0.2519... = 1.375), not the 1.3828125 of a float32 sum rounded once:
// the bf16 gradients are summed in bf16.
std::vector<torch::Tensor> mixed_expected(int world) {
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k < mixed_params().size(); ++k) {
    const auto& spec = mixed_params()[k];
    std::vector<double> sums;
    for (int64_t i = 0; i < spec.numel; ++i) {
      double sum = 0;
      for (int r = 0; r < world; ++r) sum += mixed_grad(r, k, i);
      sums.push_back(sum);
    }
    if (k == 0 && world == 3) sums[0] = 1.375;
    out.push_back(torch::tensor(sums, torch::kFloat64).to(spec.dtype));
  }
  return out;
}

class GradientSyncMixed : public ::testing::TestWithParam<MixedCase> {};

TEST_P(GradientSyncMixed, SumsEachDtypeInItsOwn) {
  const auto [world, zero2, bucket_bytes] = GetParam();
  const auto ranks = run_world_results<MixedRank>(
      "grad_mixed", world,
      {{"AHA_TEST_BUCKET_BYTES", std::to_string(bucket_bytes)}, {"AHA_TEST_ZERO2", zero2 ? "1" : "0"}},
      [&](const RankFiles& files, MixedRank& rank) {
        files.numbers() >> rank.buckets >> rank.during_backward >> rank.reduced_bytes >> rank.grads_left;
        if (zero2)
          torch::load(rank.shard, files.path(".shard.pt"));
        else
          torch::load(rank.grads, files.path(".grads.pt"));
      });
  ASSERT_EQ(ranks.size(), size_t(world));
  const auto expected = mixed_expected(world);
  // From the layout: every parameter's elements once, in its own dtype: 8 bf16 and 7 float32
  // elements, 44 bytes (60 were everything widened to float32). ZeRO-2's reduces split each
  // bucket among its owners, the same bytes.
  int64_t bytes = 0, widened = 0;
  for (const auto& spec : mixed_params()) {
    bytes += spec.numel * int64_t(c10::elementSize(spec.dtype));
    widened += spec.numel * 4;
  }
  ASSERT_EQ(bytes, 44);
  ASSERT_EQ(widened, 60);
  const std::vector<std::pair<int64_t, int64_t>> ranges =
      world == 2 ? std::vector<std::pair<int64_t, int64_t>>{{0, 8}, {8, 15}}
                 : std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 10}, {10, 15}};
  std::vector<torch::Tensor> flat;
  for (const auto& e : expected) flat.push_back(e.to(torch::kFloat32));
  const auto whole = torch::cat(flat);
  for (int r = 0; r < world; ++r) {
    const std::string what = "rank " + std::to_string(r);
    const auto& rank = ranks[r];
    // 1 MiB: {p5, p4}, p3, p2, p1, p0; 4 bytes: each alone. p3 has no gradient in the armed
    // backward, so the buckets after it wait for finish().
    EXPECT_EQ(rank.buckets, bucket_bytes == 4 ? 6 : 5) << what;
    EXPECT_EQ(rank.during_backward, bucket_bytes == 4 ? 2 : 1) << what;
    EXPECT_EQ(rank.reduced_bytes, bytes) << what;
    if (zero2) {
      EXPECT_EQ(rank.grads_left, 0) << what << ": only the shard outlives the reduction";
      ASSERT_TRUE(rank.shard.defined()) << what;
      // The rank's range, in float32 (the widest dtype), the bf16 sums widened exactly.
      EXPECT_EQ(rank.shard.scalar_type(), torch::kFloat32) << what;
      const auto [begin, end] = ranges[r];
      EXPECT_TRUE(torch::equal(rank.shard, whole.narrow(0, begin, end - begin)))
          << what << ": " << rank.shard << " against " << whole.narrow(0, begin, end - begin);
    } else {
      EXPECT_EQ(rank.grads_left, int64_t(mixed_params().size())) << what;
      ASSERT_EQ(rank.grads.size(), expected.size()) << what;
      for (size_t k = 0; k < expected.size(); ++k) {
        EXPECT_EQ(rank.grads[k].scalar_type(), expected[k].scalar_type()) << what << " p" << k;
        EXPECT_TRUE(torch::equal(rank.grads[k], expected[k]))
            << what << " p" << k << ": " << rank.grads[k] << " against " << expected[k];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, GradientSyncMixed,
                         ::testing::Values(MixedCase{2, false, 4}, MixedCase{2, false, 1 << 20},
                                           MixedCase{3, false, 4}, MixedCase{3, false, 1 << 20},
                                           MixedCase{2, true, 4}, MixedCase{2, true, 1 << 20},
                                           MixedCase{3, true, 4}, MixedCase{3, true, 1 << 20}),
                         [](const ::testing::TestParamInfo<MixedCase>& info) {
                           return std::to_string(info.param.world) + "ranks_" +
                                  (info.param.zero2 ? "zero2" : "allreduce") + "_buckets" +
                                  std::to_string(info.param.bucket_bytes);
                         });

}  // namespace
}  // namespace aha::parallel::testing
