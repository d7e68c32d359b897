// ZeRO-3 with a reference model (algorithm beta > 0; policy/learner/fully_sharded.h, frozen) on
// 2 and 4 Gloo ranks, with padded and with packed micro-batches: the weights after 3 steps (the
// reference refreshed after the second, so the third step's KL is to the refreshed reference)
// equal plain data parallelism's with the same reference and one process's (within 1e-6);
// between steps the reference's parameters hold no memory and its float32 master range is
// exactly the rank's 1/world share. Prefetching the next block's gather changes nothing, bit for
// bit (an untied head, so the head is a block of its own; packed, so the packed reference
// log-probs run through the sharded reference too).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "tests/policy/parallel/weights_near.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero_run.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSteps = 3;
// Large: Adam normalises the step, so only a KL term comparable to the policy-gradient term
// moves the weights visibly in three steps of lr 1e-3 (by ~4e-3 here: a wrong reference shows).
constexpr double kBeta = 20;
constexpr int64_t kRefresh = 2;
constexpr int64_t kMicroTokens = 24;  // packed: two or three of the 11-token rows per micro-batch
const std::string kUntied = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/qwen2_mha_untied_sharded";

ZeroRunOptions run_options(bool packed, bool prefetch = true) {
  ZeroRunOptions o;
  o.beta = kBeta;
  o.ref_refresh_steps = kRefresh;
  o.micro_batch_tokens = packed ? kMicroTokens : 0;
  o.prefetch = prefetch;
  // The KL gradient at beta 20 carries 20 times the rounding noise into the weights whose
  // gradient is zero in exact arithmetic (the key biases); AdamW's eps of 1e-6 would blow that up
  // to ~1e-6 differences between runs that sum in other orders (plain data parallelism against
  // one process too). 1e-4 is still far below the gradients that matter.
  o.eps = 1e-4;
  return o;
}

// One process, the whole batch, no sharding, with the reference: the weights after kSteps.
const OneProcessRun& one_process(bool packed) {
  static std::map<bool, OneProcessRun> runs;
  if (!runs.count(packed)) runs[packed] = zero_one_process(kSteps, "", run_options(packed));
  return runs[packed];
}

struct RankResult {
  std::vector<torch::Tensor> weights;
  int64_t parameter_bytes = 0, master_bytes = 0, reference_parameter_bytes = 0, reference_master_bytes = 0;
};

// scenarios.cpp's zero_train on `world` ranks, with the reference model.
std::vector<RankResult> train(int world, const std::string& sharding, bool packed, bool prefetch = true,
                              const std::string& model_dir = "") {
  const auto o = run_options(packed, prefetch);
  std::map<std::string, std::string> env = {{"AHA_TEST_SHARDING", sharding},
                                            {"AHA_TEST_STEPS", std::to_string(kSteps)},
                                            {"AHA_TEST_MODEL_DIR", model_dir},
                                            {"AHA_TEST_BETA", std::to_string(o.beta)},
                                            {"AHA_TEST_REF_REFRESH", std::to_string(o.ref_refresh_steps)},
                                            {"AHA_TEST_PREFETCH", prefetch ? "1" : "0"},
                                            {"AHA_TEST_EPS", std::to_string(o.eps)}};
  if (packed) env["AHA_TEST_MICRO_TOKENS"] = std::to_string(o.micro_batch_tokens);
  return run_world_results<RankResult>("zero_train", world, env, [](const RankFiles& files, RankResult& x) {
    torch::load(x.weights, files.path(".weights.pt"));
    int64_t state_bytes = 0, gradient_bytes = 0, skipped = 0;
    files.numbers() >> state_bytes >> gradient_bytes >> skipped >> x.parameter_bytes >> x.master_bytes >>
        x.reference_parameter_bytes >> x.reference_master_bytes;
  });
}

// (world size, packed micro-batches)
class Zero3Reference : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(Zero3Reference, MatchesDataParallelAndOneProcessAndHoldsItsShareOfTheReference) {
  policy::testing::one_thread();
  const auto [world, packed] = GetParam();
  const auto& ref = one_process(packed);
  const int64_t n = ref.elements;
  // The KL term matters: without the reference the weights would be others.
  {
    auto plain = zero_trainer(policy::Sharding::none, "", {.micro_batch_tokens = packed ? kMicroTokens : 0});
    for (int64_t k = 0; k < kSteps; ++k) plain->train_step(zero_batch(k));
    double largest = 0;
    auto without = weights_of(*plain);
    for (size_t i = 0; i < without.size(); ++i)
      largest = std::max(largest, (without[i] - ref.weights[i]).abs().max().item<double>());
    EXPECT_GT(largest, 1e-3) << "the reference model does not change the update";
  }
  auto dp = train(world, "none", packed);
  auto ranks = train(world, "zero3", packed);
  ASSERT_EQ(dp.size(), static_cast<size_t>(world));
  ASSERT_EQ(ranks.size(), static_cast<size_t>(world));
  int64_t reference_sum = 0;
  for (int r = 0; r < world; ++r) {
    const std::string what = "zero3 rank " + std::to_string(r) + (packed ? " packed" : " padded");
    expect_weights_near(ranks[r].weights, dp[r].weights, what + " against plain data parallelism");
    expect_weights_near(ranks[r].weights, ref.weights, what + " against one process");
    expect_weights_near(dp[r].weights, ref.weights, what + ": plain data parallelism against one process");
    // Plain data parallelism: the whole float32 reference on every rank.
    EXPECT_EQ(dp[r].reference_parameter_bytes, 4 * n);
    EXPECT_EQ(dp[r].reference_master_bytes, 0);
    // ZeRO-3: the reference's parameters hold nothing between steps; its master range is the
    // rank's share, as the policy's.
    const auto [begin, end] = share_of(n, r, world);
    EXPECT_EQ(ranks[r].parameter_bytes, 0) << what;
    EXPECT_EQ(ranks[r].reference_parameter_bytes, 0) << what;
    EXPECT_EQ(ranks[r].reference_master_bytes, 4 * (end - begin)) << what;
    EXPECT_EQ(ranks[r].reference_master_bytes, ranks[r].master_bytes) << what;
    reference_sum += ranks[r].reference_master_bytes;
  }
  EXPECT_EQ(reference_sum, dp[0].reference_parameter_bytes);
}

INSTANTIATE_TEST_SUITE_P(WorldsAndLayouts, Zero3Reference,
                         ::testing::Combine(::testing::Values(2, 4), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& info) {
                           return std::to_string(std::get<0>(info.param)) + "ranks" +
                                  (std::get<1>(info.param) ? "Packed" : "Padded");
                         });

// The same bytes land in the same parameters whether the next block's gather was in flight or
// not: weights equal bit for bit, for the policy's forward, backward re-gathers and the
// reference's forward.
TEST(Zero3Prefetch, PrefetchOnEqualsPrefetchOffBitForBit) {
  policy::testing::one_thread();
  auto off = train(2, "zero3", /*packed=*/true, /*prefetch=*/false, kUntied);
  auto on = train(2, "zero3", /*packed=*/true, /*prefetch=*/true, kUntied);
  ASSERT_EQ(off.size(), 2u);
  ASSERT_EQ(on.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(on[r].weights.size(), off[r].weights.size());
    for (size_t i = 0; i < on[r].weights.size(); ++i)
      EXPECT_TRUE(torch::equal(on[r].weights[i], off[r].weights[i])) << "rank " << r << " weight " << i;
    EXPECT_EQ(on[r].parameter_bytes, 0);
    EXPECT_EQ(on[r].reference_parameter_bytes, 0);
  }
}

}  // namespace
}  // namespace aha::parallel::testing
