// Expert parallelism with the replicated parameters' optimizer state sharded (zero1/zero2,
// policy/learner/sharded_adamw.h; the experts' state stays with their rank): the same weights
// and gradient norm as plain data parallelism and one process, each rank holding its experts'
// state plus its share of the replicated state; checkpoints written under it (the experts'
// moments as pieces of the whole tensors, optimizer_shards.h) resumed under every layout, and
// an unsharded expert-parallel checkpoint resumed under it (zero3: expert_parallel_zero3_test.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/expert_parallel.h"
#include "tests/policy/parallel/expert_parallel_world.h"
#include "tests/policy/parallel/weights_near.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

// What a rank of `world` should hold: both AdamW moments of its experts (1/world of every
// expert tensor) and of its share (share_of, as the shard layout splits them) of the other
// parameters flattened in order.
int64_t expected_state_bytes(const std::string& model, int world, int rank) {
  auto whole = load_model(kFixtures + model);
  int64_t experts = 0, replicated = 0, element = 0;
  for (auto& [name, p] : whole->named_parameters()) {
    (policy::is_routed_expert_parameter(name) ? experts : replicated) += p.numel();
    element = static_cast<int64_t>(p.element_size());
  }
  const auto [begin, end] = share_of(replicated, rank, world);
  return 2 * element * (experts / world + (end - begin));
}

struct ZeroCase {
  const char* model;
  int world;
  const char* sharding;
};
void PrintTo(const ZeroCase& c, std::ostream* os) { *os << c.model << " " << c.sharding << " on " << c.world << " ranks"; }

class ExpertParallelZero : public ::testing::TestWithParam<ZeroCase> {};

TEST_P(ExpertParallelZero, MatchesDataParallelAndHoldsItsExpertsAndShareOfTheRest) {
  policy::testing::one_thread();
  const auto [model, world, sharding] = GetParam();
  const auto& ref = reference(model);
  EXPECT_GT(ref.grad_norm, 0.5);  // the clipping threshold acts: the norm must be global
  auto dp = train(model, world, false);
  auto ep = train(model, world, true, {{"AHA_TEST_SHARDING", sharding}});
  ASSERT_EQ(dp.size(), size_t(world));
  ASSERT_EQ(ep.size(), size_t(world));
  for (int r = 0; r < world; ++r) {
    const std::string what = std::string(model) + " " + sharding + " rank " + std::to_string(r);
    expect_weights_near(ep[r].weights, dp[r].weights, what + ": against plain data parallelism");
    expect_weights_near(ep[r].weights, ref.weights, what + ": against one process");
    EXPECT_NEAR(ep[r].grad_norm, dp[r].grad_norm, 1e-5) << what;
    EXPECT_EQ(ep[r].skipped, 0) << what;
    EXPECT_EQ(ep[r].expert_bytes * world, ref.expert_bytes) << what;
    EXPECT_EQ(ep[r].state_bytes, expected_state_bytes(model, world, r)) << what;
    EXPECT_LT(ep[r].state_bytes, dp[r].state_bytes) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, ExpertParallelZero,
                         ::testing::Values(ZeroCase{"qwen3_moe_top2_norm", 2, "zero1"},
                                           ZeroCase{"qwen3_moe_top2_norm", 2, "zero2"},
                                           ZeroCase{"deepseek_v3_plainq_top1_yarn", 2, "zero1"},
                                           ZeroCase{"deepseek_v3_plainq_top1_yarn", 2, "zero2"},
                                           ZeroCase{"deepseek_v3_qlora_groups", 4, "zero2"}),
                         [](const ::testing::TestParamInfo<ZeroCase>& info) {
                           return std::string(info.param.model) + "_" + info.param.sharding + "_" +
                                  std::to_string(info.param.world) + "ranks";
                         });

// Written under expert parallelism with zero2 on 2 ranks after step 1, resumed for step 2 under
// the same layout, expert parallelism unsharded, plain data parallelism with zero1 and
// unsharded, expert parallelism with zero1 on 4 ranks, and by one process: the uninterrupted
// run's weights.
TEST(ExpertParallelZeroCheckpoint, ResumesUnderEveryLayout) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const std::map<std::string, std::string> zero2 = {{"AHA_TEST_SHARDING", "zero2"}};
  const auto whole = train(model, 2, true, zero2);
  ASSERT_EQ(whole.size(), 2u);
  const fs::path dir = save_after_one_step(model, zero2, "aha-expert-parallel-zero-ckpt");
  ASSERT_FALSE(dir.empty());
  const fs::path saved = dir / "step-1";
  for (const char* part : {"model/model.safetensors", "optimizer/index.json", "optimizer/rank-0.safetensors",
                           "optimizer/rank-1.safetensors", "state.json"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  EXPECT_FALSE(fs::exists(saved / "optimizer.pt"));
  const std::string index = read_file(saved / "optimizer" / "index.json");
  EXPECT_NE(index.find("\"format\":2"), std::string::npos) << index;
  EXPECT_NE(index.find("experts.gate_up_proj"), std::string::npos) << "the experts' moments are in the shards";

  struct Resume {
    const char* what;
    int world;
    bool expert_parallel;
    const char* sharding;
    double atol;
  };
  // Summed over other worlds or orders: float32 rounding a little above 1e-6 on a weight at 4 ranks.
  for (const auto& [what, world, expert_parallel, sharding, atol] :
       {Resume{"expert parallel zero2", 2, true, "zero2", 1e-6}, Resume{"expert parallel unsharded", 2, true, "none", 1e-6},
        Resume{"plain data parallel zero1", 2, false, "zero1", 1e-6},
        Resume{"plain data parallel unsharded", 2, false, "none", 1e-6},
        Resume{"expert parallel zero1 on 4 ranks", 4, true, "zero1", 2e-6}}) {
    auto resumed = train(model, world, expert_parallel, {{"AHA_TEST_LOAD", saved.string()}, {"AHA_TEST_SHARDING", sharding}});
    ASSERT_EQ(resumed.size(), size_t(world)) << what;
    for (int r = 0; r < world; ++r)
      expect_weights_near(resumed[r].weights, whole[0].weights, std::string(what) + " resume, rank " + std::to_string(r),
                          atol);
  }
  {  // One process on the whole batch.
    auto trainer = expert_parallel_trainer(kFixtures + model, false);
    policy::load_checkpoint(saved, *trainer);
    EXPECT_EQ(trainer->optimizer().step_count(), 1);
    trainer->train_step(expert_parallel_batch(kFixtures + model, 1));
    std::vector<torch::Tensor> weights;
    for (auto& p : trainer->policy().parameters()) weights.push_back(p.detach().clone());
    expect_weights_near(weights, whole[0].weights, "one-process resume");
  }
  fs::remove_all(dir);
}

// optimizer.pt written by unsharded expert parallelism, resumed with zero1: each rank keeps its
// range of the replicated state and its experts' state.
TEST(ExpertParallelZeroCheckpoint, UnshardedCheckpointResumesSharded) {
  policy::testing::one_thread();
  const std::string model = "qwen3_moe_top2_norm";
  const auto& ref = reference(model);
  const fs::path dir = save_after_one_step(model, {}, "aha-expert-parallel-unsharded");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(fs::exists(dir / "step-1" / "optimizer.pt"));
  auto resumed = train(model, 2, true, {{"AHA_TEST_LOAD", (dir / "step-1").string()}, {"AHA_TEST_SHARDING", "zero1"}});
  ASSERT_EQ(resumed.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    expect_weights_near(resumed[r].weights, ref.weights, "unsharded -> zero1, rank " + std::to_string(r));
    EXPECT_EQ(resumed[r].state_bytes, expected_state_bytes(model, 2, r)) << r;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha::parallel::testing
