// Expert parallelism (policy/learner/expert_parallel.h) on 2 and 4 Gloo ranks against plain data
// parallelism at the same world size and one process on the whole batch, for tiny Qwen3-MoE
// (top-2, and top-1 with dense layers between) and DeepSeek-V3 (grouped top-2 with a shared
// expert, top-1 with two shared experts) fixtures: the same weights after steps with clipping
// and the auxiliary loss, the same moe/ metrics, each rank holding 1/world of the routed
// experts' bytes; the same with activation checkpointing and with packed micro-batches; and the
// trainer's refusals.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "policy/learner/expert_parallel.h"
#include "policy/model/model_config.h"
#include "tests/policy/parallel/expert_parallel_world.h"
#include "tests/policy/parallel/weights_near.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

struct Case {
  const char* model;
  int world;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " on " << c.world << " ranks"; }

class ExpertParallel : public ::testing::TestWithParam<Case> {};

TEST_P(ExpertParallel, MatchesDataParallelAndHoldsItsShareOfTheExperts) {
  policy::testing::one_thread();
  const auto [model, world] = GetParam();
  const auto& ref = reference(model);
  // Worth comparing: the clipping threshold acts, nothing is skipped.
  EXPECT_GT(ref.grad_norm, 0.5);
  EXPECT_EQ(ref.skipped, 0);
  auto dp = train(model, world, false);
  auto ep = train(model, world, true);
  ASSERT_EQ(dp.size(), size_t(world));
  ASSERT_EQ(ep.size(), size_t(world));
  for (int r = 0; r < world; ++r) {
    const std::string what = std::string(model) + " rank " + std::to_string(r);
    expect_weights_near(ep[r].weights, dp[r].weights, what + ": expert parallel against plain data parallelism");
    expect_weights_near(ep[r].weights, ref.weights, what + ": expert parallel against one process");
    EXPECT_EQ(ep[r].skipped, 0);
    EXPECT_EQ(dp[r].expert_bytes, ref.expert_bytes);
    EXPECT_EQ(ep[r].expert_bytes * world, ref.expert_bytes) << what;
    EXPECT_NEAR(ep[r].aux_loss, dp[r].aux_loss, 1e-6) << what;
    EXPECT_NEAR(ep[r].load_max, dp[r].load_max, 1e-9) << what;
    EXPECT_NEAR(ep[r].grad_norm, dp[r].grad_norm, 1e-5) << what;
  }
  // (moe/ metrics are each rank's own rows' under data parallelism, so they are compared with
  // the same rank's plain data-parallel figures above, not with one process's.)
  EXPECT_GT(ep[0].aux_loss, 0);
}

INSTANTIATE_TEST_SUITE_P(Worlds, ExpertParallel,
                         ::testing::Values(Case{"qwen3_moe_top2_norm", 2}, Case{"qwen3_moe_top1_sparse2", 4},
                                           Case{"deepseek_v3_qlora_groups", 4},
                                           Case{"deepseek_v3_plainq_top1_yarn", 2}));

// Activation checkpointing recomputes each layer, its all-to-alls included, in backward, on
// every rank in the same order: the weights and moe/ figures are those without it.
TEST(ExpertParallelCheckpointing, RecomputedLayersTrainAsStoredOnes) {
  policy::testing::one_thread();
  for (const auto& [model, world] : {Case{"qwen3_moe_top2_norm", 2}, Case{"deepseek_v3_qlora_groups", 2}}) {
    const auto& ref = reference(model);
    auto ep = train(model, world, true, {{"AHA_TEST_CHECKPOINTING", "1"}});
    auto plain = train(model, world, true);
    ASSERT_EQ(ep.size(), size_t(world)) << model;
    ASSERT_EQ(plain.size(), size_t(world)) << model;
    for (int r = 0; r < world; ++r) {
      const std::string what = std::string(model) + " rank " + std::to_string(r);
      // Recomputing adds each layer's weight gradients in another order: float32 rounding
      // moves weights by ~1e-6 after AdamW's normalisation; a lost gradient moves them by ~lr (1e-4).
      expect_weights_near(ep[r].weights, ref.weights, what + ": recomputed expert parallel against one process", 5e-6);
      expect_weights_near(ep[r].weights, plain[r].weights, what + ": recomputed against stored activations", 5e-6);
      EXPECT_NEAR(ep[r].aux_loss, plain[r].aux_loss, 1e-6) << what;
      EXPECT_NEAR(ep[r].load_max, plain[r].load_max, 1e-9) << what;
      EXPECT_NEAR(ep[r].grad_norm, plain[r].grad_norm, 1e-5) << what;
    }
  }
}

// Packed micro-batches: their number follows each rank's sequence lengths, so the ranks agree
// on the largest and a rank with fewer runs filler forwards. The weights are those of plain
// data parallelism with the same packing (not one row per micro-batch's: the auxiliary loss is
// computed per micro-batch, so packing changes it).
TEST(ExpertParallelPacked, RanksWithFewerMicroBatchesKeepTheExchangesInStep) {
  policy::testing::one_thread();
  for (const auto& [model, world] : {Case{"qwen3_moe_top2_norm", 2}, Case{"deepseek_v3_qlora_groups", 2}}) {
    // One row of packed sequences each, and a reference model (beta > 0): its log-prob pass over
    // the packed micro-batches is collective as well.
    const std::map<std::string, std::string> packed = {{"AHA_TEST_MICRO_BATCH_TOKENS", "2"}, {"AHA_TEST_BETA", "0.04"}};
    auto ep = train(model, world, true, packed);
    auto dp = train(model, world, false, packed);
    ASSERT_EQ(ep.size(), size_t(world)) << model;
    ASSERT_EQ(dp.size(), size_t(world)) << model;
    // Worth testing: some rank has fewer micro-batches than another at some step.
    bool uneven = false;
    for (int r = 1; r < world; ++r) uneven |= ep[r].packs != ep[0].packs;
    EXPECT_TRUE(uneven) << model << ": every rank packed " << ep[0].packs;
    for (int r = 0; r < world; ++r) {
      const std::string what = std::string(model) + " rank " + std::to_string(r);
      expect_weights_near(ep[r].weights, dp[r].weights, what + ": packed expert parallel against packed data parallel");
      EXPECT_NEAR(ep[r].grad_norm, dp[r].grad_norm, 1e-5) << what;
      EXPECT_NEAR(ep[r].aux_loss, dp[r].aux_loss, 1e-6) << what;
      EXPECT_EQ(ep[r].packs, dp[r].packs) << what;
    }
  }
}

// A checkpoint written under expert parallelism after the first step is plain data
// parallelism's (the model once, optimizer.pt with the experts' whole moments): resumed with
// expert parallelism and without it, and at another world size, the second step gives the
// uninterrupted run's weights.
TEST(ExpertParallelCheckpoint, ResumesWithAndWithoutExpertParallelism) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const auto whole = train(model, 2, true);
  ASSERT_EQ(whole.size(), 2u);
  const fs::path dir = fs::temp_directory_path() / ("aha-expert-parallel-ckpt-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ASSERT_EQ(train(model, 2, true, {{"AHA_TEST_STEPS", "1"}, {"AHA_TEST_SAVE", dir.string()}}).size(), 2u);
  const fs::path saved = dir / "step-1";
  for (const char* part : {"model/model.safetensors", "optimizer.pt", "state.json"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  EXPECT_FALSE(fs::exists(saved / "optimizer"));
  for (bool expert_parallel : {true, false}) {
    auto resumed = train(model, 2, expert_parallel, {{"AHA_TEST_LOAD", saved.string()}});
    ASSERT_EQ(resumed.size(), 2u);
    for (int r = 0; r < 2; ++r)
      expect_weights_near(resumed[r].weights, whole[r].weights,
                          std::string(expert_parallel ? "expert parallel" : "plain") + " resume, rank " +
                              std::to_string(r));
  }
  // And at another world size: written by 2 ranks, resumed by 4 with expert parallelism (each
  // now holding a quarter of the experts and of their moments), the second step is still one
  // process's.
  const auto& ref = reference(model);
  auto four = train(model, 4, true, {{"AHA_TEST_LOAD", saved.string()}});
  ASSERT_EQ(four.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    // Two steps summed over 2 then 4 ranks: float32 rounding a little above 1e-6 on one weight.
    expect_weights_near(four[r].weights, ref.weights, "4-rank expert parallel resume, rank " + std::to_string(r), 2e-6);
    EXPECT_EQ(four[r].expert_bytes * 4, ref.expert_bytes);
  }
  fs::remove_all(dir);
}

TEST(ExpertParallelConfig, RefusesDenseModelsAndIndivisibleExperts) {
  const auto dense = ModelConfig::from_file(kFixtures + "qwen2_gqa_tied/config.json");
  try {
    policy::check_expert_parallel(dense, 2);
    FAIL() << "a dense model was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("needs a mixture-of-experts model"), std::string::npos) << e.what();
  }
  const auto six = ModelConfig::from_file(kFixtures + "deepseek_v3_plainq_top1_yarn/config.json");
  EXPECT_NO_THROW(policy::check_expert_parallel(six, 2));
  EXPECT_NO_THROW(policy::check_expert_parallel(six, 3));
  try {
    policy::check_expert_parallel(six, 4);
    FAIL() << "6 experts over 4 ranks were accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("6 routed experts cannot be split evenly over 4 ranks"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace aha::parallel::testing
