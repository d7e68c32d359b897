// Expert parallelism with ZeRO-3 (fully_sharded.h leaves the routed experts out: each rank keeps
// its own experts whole with their gradient and AdamW state, while the replicated rest is fully
// sharded): the weights after steps with and without clipping, with a frozen reference model (and
// refreshed), with packed micro-batches, are those of expert parallelism with zero2, plain data
// parallelism and one process; a rank holds no replicated weights between steps, its float32
// master range of the replicated parameters only, its experts (1/world) and their state; loaded
// sharded (load_model_sharded with its experts' slice) it trains bit for bit as from the whole
// load; checkpoints resume bit for bit under the same layout, and under expert parallelism with
// zero2 or unsharded, plain data parallelism and another world size, and checkpoints of those
// layouts resume under it.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/expert_parallel.h"
#include "policy/learner/fully_sharded.h"
#include "tests/policy/parallel/expert_parallel_world.h"
#include "tests/policy/parallel/same_files.h"
#include "tests/policy/parallel/weights_near.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

using Env = std::map<std::string, std::string>;

// The whole model's routed-expert elements and the others'.
struct Elements {
  int64_t experts = 0, replicated = 0;
};
Elements elements_of(const std::string& model) {
  auto whole = load_model(kFixtures + model);
  Elements e;
  for (auto& [name, p] : whole->named_parameters()) (policy::is_routed_expert_parameter(name) ? e.experts : e.replicated) += p.numel();
  return e;
}

Env with(Env env, const Env& more) {
  for (const auto& [k, v] : more) env[k] = v;
  return env;
}

const Env kZero3 = {{"AHA_TEST_SHARDING", "zero3"}};
const Env kZero2 = {{"AHA_TEST_SHARDING", "zero2"}};
const Env kShardedLoad = {{"AHA_TEST_SHARDING", "zero3"}, {"AHA_TEST_SHARDED_LOAD", "1"}};

void expect_equal_weights(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                          const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(torch::equal(got[i], want[i]))
        << what << ": weight " << i << " differs by " << (got[i] - want[i]).abs().max().item<float>();
}

struct Case {
  const char* model;
  int world;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " on " << c.world << " ranks"; }

class ExpertParallelZero3 : public ::testing::TestWithParam<Case> {};

// zero3 reduces each micro-batch's replicated gradient to its owners and adds it to the shard,
// where zero2 and plain data parallelism sum the micro-batches on each rank first: float32
// summation order, so within 1e-6 (weights_near.h), not bit for bit. A lost or doubled gradient
// (an expert left out of the update, a norm without the experts) moves a weight by ~lr = 1e-4.
TEST_P(ExpertParallelZero3, MatchesZeroTwoDataParallelAndOneProcessHoldingItsShare) {
  policy::testing::one_thread();
  const auto [model, world] = GetParam();
  const auto& ref = reference(model);
  EXPECT_GT(ref.grad_norm, 0.5);  // the clipping threshold acts: the norm must be global
  auto dp = train(model, world, false);
  auto zero2 = train(model, world, true, kZero2);
  auto zero3 = train(model, world, true, kZero3);
  auto loaded = train(model, world, true, kShardedLoad);
  ASSERT_EQ(dp.size(), size_t(world));
  ASSERT_EQ(zero2.size(), size_t(world));
  ASSERT_EQ(zero3.size(), size_t(world));
  ASSERT_EQ(loaded.size(), size_t(world));
  const auto n = elements_of(model);
  for (int r = 0; r < world; ++r) {
    const std::string what = std::string(model) + " rank " + std::to_string(r);
    expect_weights_near(zero3[r].weights, zero2[r].weights, what + ": ep+zero3 against ep+zero2");
    expect_weights_near(zero3[r].weights, dp[r].weights, what + ": ep+zero3 against plain data parallelism");
    expect_weights_near(zero3[r].weights, ref.weights, what + ": ep+zero3 against one process");
    EXPECT_NEAR(zero3[r].grad_norm, zero2[r].grad_norm, 1e-5) << what;
    EXPECT_EQ(zero3[r].skipped, 0) << what;
    // Loaded sharded: the same masters and experts as sliced from the whole load, the same steps.
    expect_equal_weights(loaded[r].weights, zero3[r].weights, what + ": loaded sharded against the whole load");
    // Between steps: no replicated weights, the master range of the replicated parameters, the
    // rank's experts, AdamW's two moments of both.
    const auto [begin, end] = share_of(n.replicated, r, world);
    for (const auto* run : {&zero3[r], &loaded[r]}) {
      EXPECT_EQ(run->replicated_bytes, 0) << what;
      EXPECT_EQ(run->master_bytes, 4 * (end - begin)) << what;
      EXPECT_EQ(run->expert_bytes * world, ref.expert_bytes) << what;
      EXPECT_EQ(run->expert_bytes, 4 * n.experts / world) << what;
      EXPECT_EQ(run->state_bytes, 8 * ((end - begin) + n.experts / world)) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, ExpertParallelZero3,
                         ::testing::Values(Case{"qwen3_moe_top2_norm", 2}, Case{"deepseek_v3_plainq_top1_yarn", 2},
                                           Case{"deepseek_v3_qlora_groups", 4}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.model) + "_" + std::to_string(info.param.world) + "ranks";
                         });

// Without clipping; with a frozen reference model (beta > 0: split as the policy, its forward
// collective too), loaded sharded or whole, and refreshed after every step; with packed
// micro-batches (a rank with fewer runs filler forwards, whose backward makes zero3's reductions
// too) and a reference: the weights of expert parallelism with zero2 and of plain data parallelism.
TEST(ExpertParallelZero3Settings, NoClippingAReferenceAndPackedMicroBatches) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const Env beta = {{"AHA_TEST_BETA", "0.04"}};
  struct Setting {
    const char* what;
    Env env;
  };
  for (const auto& [what, env] :
       {Setting{"no clipping", {{"AHA_TEST_MAX_GRAD_NORM", "0"}}}, Setting{"a reference", beta},
        Setting{"a reference refreshed every step", with(beta, {{"AHA_TEST_REF_REFRESH", "1"}})},
        Setting{"packed with a reference", with(beta, {{"AHA_TEST_MICRO_BATCH_TOKENS", "2"}})}}) {
    auto dp = train(model, 2, false, env);
    auto zero2 = train(model, 2, true, with(env, kZero2));
    auto zero3 = train(model, 2, true, with(env, kZero3));
    auto loaded = train(model, 2, true, with(env, kShardedLoad));
    ASSERT_EQ(dp.size(), 2u) << what;
    ASSERT_EQ(zero2.size(), 2u) << what;
    ASSERT_EQ(zero3.size(), 2u) << what;
    ASSERT_EQ(loaded.size(), 2u) << what;
    if (env.count("AHA_TEST_MAX_GRAD_NORM")) {
      EXPECT_GT(zero3[0].grad_norm, 0.5) << "clipping would have acted";
    }
    if (env.count("AHA_TEST_MICRO_BATCH_TOKENS")) {
      EXPECT_NE(zero3[0].packs, zero3[1].packs) << "the ranks packed alike";
    }
    for (int r = 0; r < 2; ++r) {
      const std::string where = std::string(what) + ", rank " + std::to_string(r);
      expect_weights_near(zero3[r].weights, zero2[r].weights, where + ": ep+zero3 against ep+zero2");
      expect_weights_near(zero3[r].weights, dp[r].weights, where + ": ep+zero3 against plain data parallelism");
      EXPECT_NEAR(zero3[r].grad_norm, dp[r].grad_norm, 1e-5) << where;
      expect_equal_weights(loaded[r].weights, zero3[r].weights, where + ": loaded sharded against the whole load");
    }
  }
}

// zero3 without expert parallelism has collective forwards and backwards too (block gathers,
// gradient reductions): with packed micro-batches whose number differs between the ranks (and a
// reference, whose packed log-prob pass is collective as well) the ranks agree on the largest
// and run fillers, so the weights are plain data parallelism's instead of a hang.
TEST(Zero3Packed, RanksWithFewerMicroBatchesKeepTheCollectivesInStep) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const Env packed = {{"AHA_TEST_MICRO_BATCH_TOKENS", "2"}, {"AHA_TEST_BETA", "0.04"}};
  auto dp = train(model, 2, false, packed);
  auto zero3 = train(model, 2, false, with(packed, kZero3));
  ASSERT_EQ(dp.size(), 2u);
  ASSERT_EQ(zero3.size(), 2u);
  EXPECT_NE(zero3[0].packs, zero3[1].packs) << "the ranks packed alike";
  for (int r = 0; r < 2; ++r) {
    expect_weights_near(zero3[r].weights, dp[r].weights, "packed zero3 rank " + std::to_string(r));
    EXPECT_NEAR(zero3[r].grad_norm, dp[r].grad_norm, 1e-5) << r;
  }
}

// Written under ep+zero3 (with a reference) after step 1 and resumed for step 2: under the same
// layout bit for bit (also loaded sharded); under ep+zero2, ep unsharded, plain data parallelism
// and ep+zero3 on 4 ranks, the uninterrupted run's weights (other summation orders: 1e-6, 2e-6
// at 4 ranks). The other way, checkpoints of ep+zero2 (shards) and of ep unsharded (optimizer.pt)
// resume under ep+zero3.
TEST(ExpertParallelZero3Checkpoint, ResumesBitForBitAndAcrossLayouts) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const Env beta = {{"AHA_TEST_BETA", "0.04"}};
  const auto whole = train(model, 2, true, with(beta, kZero3));
  ASSERT_EQ(whole.size(), 2u);
  const fs::path dir = save_after_one_step(model, with(beta, kZero3), "aha-ep-zero3-ckpt");
  ASSERT_FALSE(dir.empty());
  const fs::path saved = dir / "step-1";
  for (const char* part : {"model/model.safetensors", "reference/model.safetensors", "optimizer/index.json",
                           "optimizer/rank-0.safetensors", "optimizer/rank-1.safetensors", "state.json"})
    EXPECT_TRUE(fs::exists(saved / part)) << part;
  EXPECT_FALSE(fs::exists(saved / "optimizer.pt"));
  const std::string index = read_file(saved / "optimizer" / "index.json");
  EXPECT_NE(index.find("\"sharding\":\"zero3\""), std::string::npos) << index;
  EXPECT_NE(index.find("experts.gate_up_proj"), std::string::npos) << "the experts' moments are in the shards";
  // The saved model is the whole one (Hugging Face layout, every expert): one process loads it.
  {
    auto loaded = load_model(saved / "model");
    for (auto& [name, p] : loaded->named_parameters()) {
      if (policy::is_routed_expert_parameter(name)) {
        EXPECT_EQ(p.size(0), loaded->config().num_experts) << name;
      }
    }
  }

  struct Resume {
    const char* what;
    int world;
    bool expert_parallel;
    Env env;
    double atol;  // 0: bit for bit
  };
  for (const auto& [what, world, expert_parallel, env, atol] :
       {Resume{"ep+zero3", 2, true, kZero3, 0}, Resume{"ep+zero3 loaded sharded", 2, true, kShardedLoad, 0},
        Resume{"ep+zero2", 2, true, kZero2, 1e-6}, Resume{"ep unsharded", 2, true, {}, 1e-6},
        Resume{"plain data parallel", 2, false, {}, 1e-6}, Resume{"ep+zero3 on 4 ranks", 4, true, kZero3, 2e-6}}) {
    auto resumed = train(model, world, expert_parallel, with(with(beta, env), {{"AHA_TEST_LOAD", saved.string()}}));
    ASSERT_EQ(resumed.size(), size_t(world)) << what;
    for (int r = 0; r < world; ++r) {
      const std::string where = std::string(what) + " resume, rank " + std::to_string(r);
      if (atol == 0)
        expect_equal_weights(resumed[r].weights, whole[0].weights, where);
      else
        expect_weights_near(resumed[r].weights, whole[0].weights, where, atol);
    }
  }
  fs::remove_all(dir);

  // ep+zero2's shards and ep unsharded's optimizer.pt, resumed under ep+zero3.
  for (const auto& [what, env] : {std::pair<const char*, Env>{"ep+zero2", kZero2}, {"ep unsharded", {}}}) {
    const fs::path other = save_after_one_step(model, with(beta, env), "aha-ep-zero3-from");
    ASSERT_FALSE(other.empty()) << what;
    auto resumed = train(model, 2, true, with(with(beta, kZero3), {{"AHA_TEST_LOAD", (other / "step-1").string()}}));
    ASSERT_EQ(resumed.size(), 2u) << what;
    for (int r = 0; r < 2; ++r)
      expect_weights_near(resumed[r].weights, whole[0].weights,
                          std::string(what) + " checkpoint resumed under ep+zero3, rank " + std::to_string(r));
    fs::remove_all(other);
  }
}

// The ep+zero3 checkpoint (save_checkpoint: the replicated parameters streamed block by block,
// each expert's matrices broadcast from the rank that holds them; the reference's too) holds the
// model directories of the whole save it replaces (every rank gathering the replicated
// parameters and all-gathering the experts, rank 0 calling save_model), byte for byte; and the
// CPU memory a rank allocates while saving stays below its experts' and master range's share
// plus one block, far below the whole model that the gathering save allocated on every rank.
TEST(ExpertParallelZero3Checkpoint, StreamedSaveWritesTheWholeSavesBytes) {
  policy::testing::one_thread();
  const std::string model = "deepseek_v3_qlora_groups";
  const fs::path dir = fs::temp_directory_path() / ("aha-ep-zero3-streamed-" + std::to_string(::getpid()));
  const fs::path whole = fs::temp_directory_path() / ("aha-ep-zero3-whole-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::remove_all(whole);
  const auto ranks = train(model, 2, true,
                           with(kZero3, {{"AHA_TEST_BETA", "0.04"}, {"AHA_TEST_STEPS", "1"}, {"AHA_TEST_SAVE", dir.string()},
                                         {"AHA_TEST_SAVE_WHOLE", whole.string()}, {"AHA_TEST_SAVE_PEAK", "1"}}));
  ASSERT_EQ(ranks.size(), 2u);
  expect_same_files(dir / "step-1" / "model", whole / "model", "ep+zero3 model");
  expect_same_files(dir / "step-1" / "reference", whole / "reference", "ep+zero3 reference");
  // The largest block of replicated parameters and one expert's matrix (moe_intermediate x
  // hidden), in float32, and a few small things; not the whole model, nor a layer's experts.
  auto whole_model = load_model(kFixtures + model);
  std::map<size_t, int64_t> blocks;
  int64_t total = 0, largest = 0;
  for (const auto& [name, p] : whole_model->named_parameters()) {
    total += p.numel();
    if (!policy::is_routed_expert_parameter(name)) blocks[policy::block_of_parameter(*whole_model, name)] += p.numel();
  }
  for (const auto& [_, n] : blocks) largest = std::max(largest, n);
  const auto& config = whole_model->config();
  const int64_t expert_matrix = config.moe_intermediate_size * config.hidden_size;
  const int64_t layer_experts = config.num_experts * 3 * expert_matrix;
  constexpr int64_t kSlack = 4096;
  const int64_t bound = 4 * (largest + expert_matrix) + kSlack;
  ASSERT_GT(4 * total, bound);
  ASSERT_GT(4 * (largest + layer_experts), bound) << "the test could not tell a layer's experts from one";
  for (int r = 0; r < 2; ++r) {
    EXPECT_LE(ranks[r].save_peak, bound) << "rank " << r << ": the largest replicated block is " << 4 * largest
                                         << " bytes, an expert matrix " << 4 * expert_matrix << ", the whole model "
                                         << 4 * total;
  }
  fs::remove_all(dir);
  fs::remove_all(whole);
}

}  // namespace
}  // namespace aha::parallel::testing
