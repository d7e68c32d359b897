// ZeRO-3 (policy/learner/fully_sharded.h) on 2 and 4 Gloo ranks: the weights after steps with
// and without clipping equal plain data parallelism's and one process's (within 1e-6); between
// steps a rank's parameters hold no memory and its float32 master range and AdamW moments are
// its 1/world share (measured from the tensors' storage, against the unsharded ranks' own
// measure); the rollout's bf16 copy is the gathered weights rounded; an untied LM head, an MoE
// model and activation checkpointing train alike; checkpoints resume 4 -> 2, 2 -> 4, unsharded, and bit for bit at the
// same world size; loaded sharded (load_model_sharded, on 2 and 3 ranks) it trains and resumes
// bit for bit as from the whole load, and the rollout's copy read from the files is the gathered
// one; unsupported configurations are errors that say why.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/parallel/same_files.h"
#include "tests/policy/parallel/weights_near.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero3_load_models.h"
#include "tests/policy/parallel/zero_run.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSteps = 3;
const std::string kUntied = kSplit;

// One process, the whole batch, no sharding: weights after kSteps steps.
const OneProcessRun& reference(const std::string& model_dir = "") {
  static std::map<std::string, OneProcessRun> refs;
  if (!refs.count(model_dir)) refs[model_dir] = zero_one_process(kSteps, model_dir);
  return refs[model_dir];
}

fs::path scratch(const std::string& what) {
  return fs::temp_directory_path() / ("aha-zero3-" + what + "-" + std::to_string(::getpid()));
}

struct RankResult {
  std::vector<torch::Tensor> weights, rollout;
  std::vector<torch::Tensor> rollout_files, rollout_gathered;  // AHA_TEST_SHARDED_LOAD: the copies at start
  int64_t state_bytes = 0, gradient_bytes = 0, skipped = 0, parameter_bytes = 0, master_bytes = 0;
  int64_t save_peak = -1;  // AHA_TEST_SAVE_PEAK: the CPU memory the checkpoint save allocated at its peak
  int64_t resident() const { return parameter_bytes + master_bytes + state_bytes; }
};

// Runs scenarios.cpp's zero_train on `world` ranks and returns each rank's result.
std::vector<RankResult> train(int world, const std::string& sharding, int64_t steps, const fs::path& load = {},
                              const fs::path& save = {}, const std::string& model_dir = "",
                              bool checkpointing = false, const std::map<std::string, std::string>& more_env = {}) {
  std::map<std::string, std::string> env = {{"AHA_TEST_SHARDING", sharding},
                                            {"AHA_TEST_STEPS", std::to_string(steps)},
                                            {"AHA_TEST_MODEL_DIR", model_dir}};
  if (!load.empty()) env["AHA_TEST_LOAD"] = load.string();
  if (!save.empty()) env["AHA_TEST_SAVE"] = save.string();
  if (checkpointing) env["AHA_TEST_CHECKPOINTING"] = "1";
  env.insert(more_env.begin(), more_env.end());
  return run_world_results<RankResult>("zero_train", world, env, [](const RankFiles& files, RankResult& x) {
    torch::load(x.weights, files.path(".weights.pt"));
    if (files.has(".rollout.pt")) torch::load(x.rollout, files.path(".rollout.pt"));
    if (files.has(".rollout_files.pt")) torch::load(x.rollout_files, files.path(".rollout_files.pt"));
    if (files.has(".rollout_gathered.pt")) torch::load(x.rollout_gathered, files.path(".rollout_gathered.pt"));
    files.numbers() >> x.state_bytes >> x.gradient_bytes >> x.skipped >> x.parameter_bytes >> x.master_bytes;
    if (files.has(".save_peak")) std::ifstream(files.path(".save_peak")) >> x.save_peak;
  });
}

class Zero3Sharding : public ::testing::TestWithParam<int> {};

TEST_P(Zero3Sharding, MatchesDataParallelAndHoldsItsShareOfParametersAndState) {
  policy::testing::one_thread();
  const int world = GetParam();
  const auto& ref = reference();
  const int64_t n = ref.elements;
  auto dp = train(world, "none", kSteps);
  auto ranks = train(world, "zero3", kSteps);
  ASSERT_EQ(dp.size(), static_cast<size_t>(world));
  ASSERT_EQ(ranks.size(), static_cast<size_t>(world));
  int64_t resident_sum = 0;
  for (int r = 0; r < world; ++r) {
    const std::string what = "zero3 rank " + std::to_string(r);
    expect_weights_near(ranks[r].weights, dp[r].weights, what + " against plain data parallelism");
    expect_weights_near(ranks[r].weights, ref.weights, what + " against one process");
    EXPECT_EQ(ranks[r].skipped, 0);
    // Plain data parallelism: float32 weights and both moments of every element.
    EXPECT_EQ(dp[r].parameter_bytes, 4 * n);
    EXPECT_EQ(dp[r].master_bytes, 0);
    EXPECT_EQ(dp[r].resident(), 12 * n);
    // ZeRO-3: no parameter memory between steps; the master range, its moments and (after
    // backward) its gradient only.
    const auto [begin, end] = share_of(n, r, world);
    EXPECT_EQ(ranks[r].parameter_bytes, 0) << what;
    EXPECT_EQ(ranks[r].master_bytes, 4 * (end - begin)) << what;
    EXPECT_EQ(ranks[r].state_bytes, 8 * (end - begin)) << what;
    EXPECT_EQ(ranks[r].gradient_bytes, 4 * (end - begin)) << what;
    EXPECT_LE(ranks[r].resident() * world, dp[r].resident() + 12 * world) << what << " holds more than 1/" << world;
    resident_sum += ranks[r].resident();
    // The rollout's bf16 copy: the gathered weights rounded to bf16, nothing else.
    ASSERT_EQ(ranks[r].rollout.size(), ranks[r].weights.size());
    for (size_t i = 0; i < ranks[r].weights.size(); ++i)
      EXPECT_TRUE(torch::equal(ranks[r].rollout[i], ranks[r].weights[i].to(torch::kBFloat16))) << what << " " << i;
  }
  EXPECT_EQ(resident_sum, 12 * n);
}

INSTANTIATE_TEST_SUITE_P(Worlds, Zero3Sharding, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "ranks";
                         });

// An untied LM head is a block of its own; an MoE layer's experts are stacked parameters.
TEST(Zero3Models, UntiedHeadAndMixtureOfExpertsMatchOneProcess) {
  policy::testing::one_thread();
  for (const auto& model : {kUntied, kMoe}) {
    const auto& ref = reference(model);
    auto ranks = train(2, "zero3", kSteps, {}, {}, model);
    ASSERT_EQ(ranks.size(), 2u) << model;
    for (int r = 0; r < 2; ++r) {
      expect_weights_near(ranks[r].weights, ref.weights, model + " rank " + std::to_string(r) + " against one process");
      EXPECT_EQ(ranks[r].parameter_bytes, 0) << model;
    }
  }
}

// With activation checkpointing a layer is recomputed inside backward, after its weights were
// gathered again: the same weights as one process without it.
TEST(Zero3Models, ActivationCheckpointingRecomputesWithTheGatheredWeights) {
  policy::testing::one_thread();
  const auto& ref = reference();
  auto ranks = train(2, "zero3", kSteps, {}, {}, "", /*checkpointing=*/true);
  ASSERT_EQ(ranks.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    expect_weights_near(ranks[r].weights, ref.weights, "checkpointing, rank " + std::to_string(r));
    EXPECT_EQ(ranks[r].parameter_bytes, 0);
  }
}

// Weights after kSteps steps, trained kSteps - 1 steps under zero3, saved, and resumed for the last one.
TEST(Zero3Checkpoint, ResumesAtAnotherWorldSizeAndUnsharded) {
  policy::testing::one_thread();
  const auto& ref = reference();
  const fs::path four = scratch("four"), two = scratch("two");
  const fs::path saved_four = four / ("step-" + std::to_string(kSteps - 1));
  const fs::path saved_two = two / ("step-" + std::to_string(kSteps - 1));

  ASSERT_EQ(train(4, "zero3", kSteps - 1, {}, four).size(), 4u);
  for (int r = 0; r < 4; ++r)
    EXPECT_TRUE(fs::exists(saved_four / "optimizer" / ("rank-" + std::to_string(r) + ".safetensors"))) << r;
  EXPECT_NE(read_file(saved_four / "optimizer" / "index.json").find("\"sharding\":\"zero3\""), std::string::npos);
  // The model once, whole, in Hugging Face format: one process loads it as any model.
  {
    auto model = load_model(saved_four / "model");
    auto dp = zero_trainer(policy::Sharding::none);
    for (int64_t k = 0; k < kSteps - 1; ++k) dp->train_step(zero_batch(k));
    auto want = weights_of(*dp);
    auto got = model->parameters();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(torch::allclose(got[i], want[i], 0, 1e-6)) << i;
  }

  // 4 -> 2.
  auto resumed = train(2, "zero3", 1, saved_four);
  ASSERT_EQ(resumed.size(), 2u);
  for (int r = 0; r < 2; ++r) expect_weights_near(resumed[r].weights, ref.weights, "4 -> 2, rank " + std::to_string(r));

  // Sharded -> unsharded: one process on the whole batch.
  {
    auto trainer = zero_trainer(policy::Sharding::none);
    policy::load_checkpoint(saved_four, *trainer);
    EXPECT_EQ(trainer->optimizer().step_count(), kSteps - 1);
    trainer->train_step(zero_batch(kSteps - 1));
    expect_weights_near(weights_of(*trainer), ref.weights, "4 ranks -> one process");
  }

  // 2 -> 4; and 2 -> 2 continues bit for bit.
  ASSERT_EQ(train(2, "zero3", kSteps - 1, {}, two).size(), 2u);
  auto grown = train(4, "zero3", 1, saved_two);
  ASSERT_EQ(grown.size(), 4u);
  for (int r = 0; r < 4; ++r) expect_weights_near(grown[r].weights, ref.weights, "2 -> 4, rank " + std::to_string(r));
  auto same = train(2, "zero3", 1, saved_two);
  auto straight = train(2, "zero3", kSteps);
  ASSERT_EQ(same.size(), 2u);
  ASSERT_EQ(straight.size(), 2u);
  for (int r = 0; r < 2; ++r)
    for (size_t i = 0; i < same[r].weights.size(); ++i)
      EXPECT_TRUE(torch::equal(same[r].weights[i], straight[r].weights[i])) << "rank " << r << " weight " << i;
  remove_tree(four);
  remove_tree(two);
}

void expect_bit_equal(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                      const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ", tensor " << i;
}

// The sharded load's environment for scenarios.cpp's zero_train; rows divisible by the world.
std::map<std::string, std::string> sharded_env(int world, bool sharded, double beta = 0) {
  std::map<std::string, std::string> env = {{"AHA_TEST_ROWS", world == 3 ? "6" : "4"}};
  if (sharded) env["AHA_TEST_SHARDED_LOAD"] = "1";
  if (beta > 0) env["AHA_TEST_BETA"] = std::to_string(beta);
  return env;
}

// Loaded sharded (load_model_sharded; the models of zero3_load_models.h, 3 ranks cutting tensors
// in the middle): at start the rollout's bf16 copy read from the files is the copy gathered from
// the masters, bit for bit, and kSteps steps train to the weights of the whole load, bit for bit.
TEST(Zero3ShardedLoad, TrainsAsTheWholeLoadAndTheRolloutCopyIsTheGatheredOne) {
  policy::testing::one_thread();
  struct Case {
    std::string model;
    int world;
  };
  for (const auto& c : {Case{"", 2}, Case{"", 3}, Case{kSplit, 3}, Case{kMoe, 2}, Case{stacked_moe(), 3}}) {
    const std::string what = (c.model.empty() ? kTied : c.model) + " on " + std::to_string(c.world) + " ranks";
    auto whole = train(c.world, "zero3", kSteps, {}, {}, c.model, false, sharded_env(c.world, false));
    auto sharded = train(c.world, "zero3", kSteps, {}, {}, c.model, false, sharded_env(c.world, true));
    ASSERT_EQ(whole.size(), static_cast<size_t>(c.world)) << what;
    ASSERT_EQ(sharded.size(), static_cast<size_t>(c.world)) << what;
    for (int r = 0; r < c.world; ++r) {
      const std::string rank = what + ", rank " + std::to_string(r);
      EXPECT_FALSE(sharded[r].rollout_files.empty()) << rank;
      expect_bit_equal(sharded[r].rollout_files, sharded[r].rollout_gathered, rank + ": rollout copy from the files");
      expect_bit_equal(sharded[r].weights, whole[r].weights, rank + ": weights after training");
      EXPECT_EQ(sharded[r].parameter_bytes, 0) << rank;
      EXPECT_EQ(sharded[r].master_bytes, whole[r].master_bytes) << rank;
    }
  }
}

// With a reference model (beta > 0, its master range a copy of the policy's): loaded sharded
// trains as the whole load does; kSteps - 1 steps, a checkpoint, and one step resumed (the
// checkpoint's model and reference read range by range) equal kSteps straight, bit for bit.
TEST(Zero3ShardedLoad, WithAReferenceResumesBitForBit) {
  policy::testing::one_thread();
  const double beta = 0.04;
  const fs::path dir = scratch("sharded-resume");
  auto whole = train(2, "zero3", kSteps, {}, {}, "", false, sharded_env(2, false, beta));
  auto straight = train(2, "zero3", kSteps, {}, {}, "", false, sharded_env(2, true, beta));
  ASSERT_EQ(train(2, "zero3", kSteps - 1, {}, dir, "", false, sharded_env(2, true, beta)).size(), 2u);
  auto resumed = train(2, "zero3", 1, dir / ("step-" + std::to_string(kSteps - 1)), {}, "", false,
                       sharded_env(2, true, beta));
  ASSERT_EQ(whole.size(), 2u);
  ASSERT_EQ(straight.size(), 2u);
  ASSERT_EQ(resumed.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    expect_bit_equal(straight[r].weights, whole[r].weights, "sharded load against whole, rank " + std::to_string(r));
    expect_bit_equal(resumed[r].weights, straight[r].weights, "resumed against straight, rank " + std::to_string(r));
  }
  remove_tree(dir);
}

// The checkpoint of a zero3 run (save_checkpoint: the policy and, beta > 0, the reference
// streamed block by block to rank 0's writer) holds the model directories the whole save wrote
// before (every rank gathering the whole float32 model, rank 0 calling save_model), byte for
// byte; and the CPU memory a rank allocates while saving (the optimizer shard and RNG files
// included) stays within its master range and one block of the model (and of the reference),
// far below the whole model (which the gathering save allocated on every rank).
TEST(Zero3Checkpoint, StreamedSaveWritesTheWholeSavesBytesInABlocksMemory) {
  policy::testing::one_thread();
  struct Case {
    std::string model;
    int world;
    double beta;
  };
  for (const auto& c : {Case{"", 2, 0.04}, Case{kSplit, 3, 0}, Case{kMoe, 2, 0.04}}) {
    const std::string what = (c.model.empty() ? kTied : c.model) + " on " + std::to_string(c.world) + " ranks";
    const fs::path dir = scratch("streamed"), whole = scratch("whole");
    auto env = sharded_env(c.world, false, c.beta);
    env["AHA_TEST_SAVE_WHOLE"] = whole.string();
    env["AHA_TEST_SAVE_PEAK"] = "1";
    const auto ranks = train(c.world, "zero3", 1, {}, dir, c.model, false, env);
    ASSERT_EQ(ranks.size(), size_t(c.world)) << what;
    expect_same_files(dir / "step-1" / "model", whole / "model", what + ": model");
    if (c.beta > 0) expect_same_files(dir / "step-1" / "reference", whole / "reference", what + ": reference");
    if (c.beta == 0) {
      EXPECT_FALSE(fs::exists(dir / "step-1" / "reference")) << what;
    }

    auto model = zero_model(c.model);
    std::map<size_t, int64_t> blocks;
    int64_t total = 0, largest = 0;
    for (const auto& [name, p] : model->named_parameters()) {
      blocks[policy::block_of_parameter(*model, name)] += p.numel();
      total += p.numel();
    }
    for (const auto& [_, n] : blocks) largest = std::max(largest, n);
    // One block's buffer in float32 (reused for every block, the reference's too) and a few small
    // things (RNG states, file names); the whole float32 model, which gathering it took on every
    // rank, would not fit. (The peak is counted above what was live when the save began; what the
    // save frees first, e.g. a gather left in flight, may lower it: no lower bound here.)
    constexpr int64_t kSlack = 4096;
    const int64_t bound = 4 * largest + kSlack;
    ASSERT_GT(4 * total, bound) << what << ": the test could not tell the whole model from a block";
    for (int r = 0; r < c.world; ++r) {
      const std::string rank = what + ", rank " + std::to_string(r);
      EXPECT_LE(ranks[r].save_peak, bound) << rank << ": the largest block is " << 4 * largest << " bytes, the whole model "
                                           << 4 * total << ", the master range " << ranks[r].master_bytes;
    }
    remove_tree(dir);
    remove_tree(whole);
  }
}

TEST(Zero3Config, UnsupportedConfigurationsAreErrorsThatSayWhy) {
  policy::testing::one_thread();
  const bool ran = run_world_reading("zero3_bad_config", 2, {}, [](int, const RankFiles& files) {
    auto in = files.numbers();  // the errors' messages, one a line
    std::string bf16;
    std::getline(in, bf16);
    EXPECT_NE(bf16.find("BFloat16"), std::string::npos) << bf16;
    EXPECT_NE(bf16.find("float32"), std::string::npos) << bf16;
  });
  ASSERT_TRUE(ran);
  try {
    policy::parse_sharding("zero4");
    ADD_FAILURE() << "zero4 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none, zero1, zero2, zero3"), std::string::npos) << e.what();
  }
  EXPECT_EQ(policy::parse_sharding("zero3"), policy::Sharding::zero3);
}

}  // namespace
}  // namespace aha::parallel::testing
