// Expert parallelism with a bf16 model and float32 master weights (optimizer.h's fp32_master),
// unsharded and with zero2 (the replicated parameters' masters sharded with their moments): the
// same weights as plain data parallelism with masters, each rank holding 12 bytes of state per
// element of its experts and of its replicated parameters (all of them, or its range); and a
// checkpoint written under expert parallelism with zero2, the experts' masters as pieces of the
// whole expert tensors beside their moments, resumed bit for bit on the same layout and under
// the layouts expert_parallel_zero_test.cpp resumes in.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/expert_parallel.h"
#include "tests/policy/parallel/expert_parallel_world.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

// bf16 weights (read back as float32) of two runs whose bf16 gradients are summed in other
// orders (all-reduce against all-to-all, other world sizes): a weight may round one bf16 step
// apart (rtol 1/64 covers a step wherever the two fall in a binade), and an element whose
// gradient is zero in exact arithmetic gets bf16 rounding noise of either sign, which AdamW
// turns into a step of up to lr either way (eps 1e-6 is far below the noise): 2 lr per step
// between two runs, 2 x 1e-4 x kExpertParallelSteps in all. A master of another expert or a
// lost one moves the weights far more (the same layout is compared bit for bit).
void expect_bf16_near(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                      const std::string& what) {
  const double atol = 2 * 1e-4 * kExpertParallelSteps;
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(torch::allclose(got[i], want[i], 1.0 / 64, atol))
        << what << ": weight " << i << " differs by " << (got[i] - want[i]).abs().max().item<float>();
}

void expect_equal(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ": weight " << i;
}

// 12 bytes (a float32 master and two float32 moments) per element of the rank's experts and of
// its replicated parameters: all of them unsharded, its share (share_of) under zero1/zero2.
int64_t expected_state_bytes(const std::string& model, int world, int rank, bool sharded) {
  auto whole = load_model(kFixtures + model);
  int64_t experts = 0, replicated = 0;
  for (auto& [name, p] : whole->named_parameters()) (policy::is_routed_expert_parameter(name) ? experts : replicated) += p.numel();
  const auto [begin, end] = share_of(replicated, rank, world);
  return 12 * (experts / world + (sharded ? end - begin : replicated));
}

struct Case {
  const char* model;
  const char* sharding;
};

class ExpertParallelMasters : public ::testing::TestWithParam<Case> {};

TEST_P(ExpertParallelMasters, MatchesDataParallelWithMastersAndHoldsItsExpertsMasters) {
  policy::testing::one_thread();
  const auto [model, sharding] = GetParam();
  const std::map<std::string, std::string> masters = {{"AHA_TEST_MASTERS", "1"}};
  auto dp = train(model, 2, false, masters);
  auto with_sharding = masters;
  with_sharding["AHA_TEST_SHARDING"] = sharding;
  auto ep = train(model, 2, true, with_sharding);
  ASSERT_EQ(dp.size(), 2u);
  ASSERT_EQ(ep.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    const std::string what = std::string(model) + " " + sharding + " rank " + std::to_string(r);
    expect_bf16_near(ep[r].weights, dp[r].weights, what + ": against plain data parallelism with masters");
    EXPECT_EQ(ep[r].skipped, 0) << what;
    EXPECT_EQ(ep[r].state_bytes, expected_state_bytes(model, 2, r, std::string(sharding) != "none")) << what;
  }
  // The masters moved the weights: not the bf16 model's start (the fixture read in bf16).
  auto start = load_model(kFixtures + std::string(model), {.dtype = torch::kBFloat16});
  bool moved = false;
  auto params = start->parameters();
  for (size_t i = 0; i < params.size(); ++i) moved |= !torch::equal(params[i].to(torch::kFloat32), ep[0].weights[i]);
  EXPECT_TRUE(moved);
}

INSTANTIATE_TEST_SUITE_P(Worlds, ExpertParallelMasters,
                         ::testing::Values(Case{"qwen3_moe_top2_norm", "none"}, Case{"qwen3_moe_top2_norm", "zero2"},
                                           Case{"deepseek_v3_plainq_top1_yarn", "zero2"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.model) + "_" + info.param.sharding;
                         });

// Plain data parallelism with masters on a DeepSeek-V3 model (bf16 weights, a float32 router
// gate in each MoE layer): zero2's gradients (each bucket reduced in its own dtype to the ranks
// owning it, the rank's range assembled in float32 for its masters) step the model exactly as
// zero1's all-reduced ones (bf16 .grad cast to float32 for the masters) do: the same weights and
// gradient norm bit for bit on 2 ranks, where each sum is of two values, the same in either
// collective; and the float32 gates moved.
TEST(DataParallelMastersMixedDtypes, Zero2StepsAsZero1) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_plainq_top1_yarn";
  auto zero1 = train(model, 2, false, {{"AHA_TEST_MASTERS", "1"}, {"AHA_TEST_SHARDING", "zero1"}});
  auto zero2 = train(model, 2, false, {{"AHA_TEST_MASTERS", "1"}, {"AHA_TEST_SHARDING", "zero2"}});
  ASSERT_EQ(zero1.size(), 2u);
  ASSERT_EQ(zero2.size(), 2u);
  auto start = load_model(kFixtures + model, {.dtype = torch::kBFloat16});
  const auto named = start->named_parameters();
  int64_t gates = 0;
  for (size_t i = 0; i < named.size(); ++i) {
    if (named[i].second.scalar_type() != torch::kFloat32) continue;
    ++gates;
    EXPECT_FALSE(torch::equal(named[i].second, zero2[0].weights[i])) << named[i].first << " did not move";
  }
  EXPECT_GT(gates, 0) << "the model has float32 parameters among its bf16 ones";
  for (int r = 0; r < 2; ++r) {
    expect_equal(zero2[r].weights, zero1[r].weights, "zero2 against zero1, rank " + std::to_string(r));
    EXPECT_EQ(zero2[r].grad_norm, zero1[r].grad_norm) << "rank " << r;
    EXPECT_EQ(zero2[r].skipped, 0) << "rank " << r;
  }
}

// Written under expert parallelism with zero2 and masters on 2 ranks after step 1, resumed for
// step 2: on the same layout bit for bit; under expert parallelism unsharded, plain data
// parallelism with zero1 and unsharded, expert parallelism with zero1 on 4 ranks and one process
// to one bf16 step of the uninterrupted run.
TEST(ExpertParallelMastersCheckpoint, ResumesUnderEveryLayout) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const std::map<std::string, std::string> zero2 = {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_MASTERS", "1"}};
  const auto whole = train(model, 2, true, zero2);
  ASSERT_EQ(whole.size(), 2u);
  const fs::path dir = save_after_one_step(model, zero2, "aha-expert-parallel-masters-ckpt");
  ASSERT_FALSE(dir.empty());
  const fs::path saved = dir / "step-1";
  const std::string index = read_file(saved / "optimizer" / "index.json");
  EXPECT_NE(index.find("experts.gate_up_proj"), std::string::npos) << "the experts' state is in the shards";

  auto same = train(model, 2, true, {{"AHA_TEST_LOAD", saved.string()}, {"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_MASTERS", "1"}});
  ASSERT_EQ(same.size(), 2u);
  for (int r = 0; r < 2; ++r) expect_equal(same[r].weights, whole[r].weights, "same layout, rank " + std::to_string(r));

  struct Resume {
    const char* what;
    int world;
    bool expert_parallel;
    const char* sharding;
  };
  for (const auto& [what, world, expert_parallel, sharding] :
       {Resume{"expert parallel unsharded", 2, true, "none"}, Resume{"plain data parallel zero1", 2, false, "zero1"},
        Resume{"plain data parallel unsharded", 2, false, "none"}, Resume{"expert parallel zero1 on 4 ranks", 4, true, "zero1"}}) {
    auto resumed = train(model, world, expert_parallel,
                         {{"AHA_TEST_LOAD", saved.string()}, {"AHA_TEST_SHARDING", sharding}, {"AHA_TEST_MASTERS", "1"}});
    ASSERT_EQ(resumed.size(), size_t(world)) << what;
    for (int r = 0; r < world; ++r)
      expect_bf16_near(resumed[r].weights, whole[0].weights, std::string(what) + " resume, rank " + std::to_string(r));
  }
  {  // One process on the whole batch.
    auto trainer = expert_parallel_trainer(kFixtures + model, false, false, 0, 0, policy::Sharding::none, true);
    policy::load_checkpoint(saved, *trainer);
    EXPECT_EQ(trainer->optimizer().step_count(), 1);
    trainer->train_step(expert_parallel_batch(kFixtures + model, 1));
    std::vector<torch::Tensor> weights;
    for (auto& p : trainer->policy().parameters()) weights.push_back(p.detach().to(torch::kFloat32));
    expect_bf16_near(weights, whole[0].weights, "one-process resume");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha::parallel::testing
