// Gradient all-reduce overlapped with backward, on 2 Gloo ranks (scenarios.cpp grad_average):
// hand-worked gradients. Rank 0: micro-batch 1 gives a [1, 2], b [1, 1, 1]; micro-batch 2
// (armed) b [2, 0, 0]. Rank 1: a [3, -4], b [0, 2, 4]; then b [0, 0, 2]. Accumulated: rank 0
// a [1, 2], b [3, 1, 1]; rank 1 a [3, -4], b [0, 2, 6]; averaged: a [2, -1], b [1.5, 1.5, 3.5].
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

TEST(GradientSync, TwoRanksAverageTheAccumulatedGradients) {
  const std::string out = (std::filesystem::temp_directory_path() / ("aha-grad-average-" + std::to_string(::getpid()))).string();
  auto ranks = run_world("grad_average", 2, {{"AHA_PARALLEL_OUT", out}});
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;
    std::ifstream in(out + ".rank" + std::to_string(r));
    int64_t buckets = 0, during_backward = 0;
    in >> buckets >> during_backward;
    // Buckets of 12 bytes: b (3 floats) alone, then a. b's bucket is ready inside the armed
    // backward and launched there; a gets no gradient in it and goes at finish().
    EXPECT_EQ(buckets, 2);
    EXPECT_EQ(during_backward, 1);
    std::vector<float> g(5);
    for (auto& v : g) in >> v;
    const std::vector<float> expected = {2, -1, 1.5, 1.5, 3.5};
    for (size_t i = 0; i < g.size(); ++i) EXPECT_FLOAT_EQ(g[i], expected[i]) << "rank " << r << " value " << i;
    std::filesystem::remove(out + ".rank" + std::to_string(r));
  }
}

}  // namespace
}  // namespace aha::parallel::testing
