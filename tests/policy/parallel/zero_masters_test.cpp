// ZeRO-1/2 with float32 master weights of bf16 parameters (optimizer.h's fp32_master,
// sharded_adamw.h) on 2 and 4 Gloo ranks, against one unsharded masters optimizer over the same
// gradients (zero_masters_run.h): the same bf16 weights and the same float32 masters of the
// rank's range bit for bit (without clipping; with it, up to the norm's summation order), each
// rank holding 12 bytes of state per element of its range only; updates that bf16 rounds away
// accumulate; a weight written between steps re-seeds the rank's masters; and checkpoints:
// the same layout resumes bit for bit, a zero2 checkpoint resumes unsharded and at another world
// size and sharding, an unsharded optimizer.pt resumes sharded, and shards written without
// masters start them from the weights; master_of finds each parameter's own master; and a model
// with a float32 parameter among bf16 ones gathers each dtype in its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/files.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/shard_layout.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero_masters_run.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSteps = 20, kSaveAt = 8;

struct RankRun {
  std::vector<torch::Tensor> weights;
  torch::Tensor masters;  // the rank's float32 master range
  int64_t state_bytes = 0, steps = 0, begin = 0, end = 0;
  int64_t gathered_bytes = 0;  // given to the weights' all-gathers
};

std::vector<RankRun> run(int world, const std::map<std::string, std::string>& env) {
  return run_world_results<RankRun>("zero_masters", world, env, [](const RankFiles& files, RankRun& run) {
    torch::load(run.weights, files.path(".weights.pt"));
    torch::load(run.masters, files.path(".masters.pt"));
    files.numbers() >> run.state_bytes >> run.steps >> run.begin >> run.end >> run.gathered_bytes;
  });
}

// The unsharded masters optimizer over the same gradients.
struct Reference {
  std::vector<torch::Tensor> weights;
  torch::Tensor masters;  // flattened in the parameters' order
};
Reference reference(int64_t steps, double clip = 0, int64_t write_at = -1, int float32_param = -1) {
  auto p = masters_params(float32_param);
  policy::Optimizer opt(p.groups(), masters_options(true, clip));
  masters_steps(opt, p, 0, steps, write_at);
  Reference r{masters_weights(p), {}};
  std::vector<torch::Tensor> flat;
  for (const auto& [_, t] : p.named()) {
    const auto master = opt.master_of(t);  // none of a float32 parameter: its weights are
    flat.push_back((master.defined() ? master : t.detach()).reshape({-1}));
  }
  r.masters = torch::cat(flat);
  return r;
}

void expect_equal(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ": p" << i << "\n" << got[i] << want[i];
}

// Every rank: the reference's weights and its range of the reference's masters, bit for bit.
void expect_reference(const std::vector<RankRun>& ranks, const Reference& ref, const std::string& what) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    const auto& run = ranks[r];
    expect_equal(run.weights, ref.weights, what + ", rank " + std::to_string(r));
    EXPECT_TRUE(torch::equal(run.masters, ref.masters.narrow(0, run.begin, run.end - run.begin)))
        << what << ", rank " << r << "'s masters";
  }
}

fs::path scratch(const std::string& what) {
  return fs::temp_directory_path() / ("aha-zero-masters-" + what + "-" + std::to_string(::getpid()));
}

struct Case {
  int world;
  const char* sharding;
};

class ZeroMasters : public ::testing::TestWithParam<Case> {};

TEST_P(ZeroMasters, EqualsTheUnshardedMastersAndHoldsTwelveBytesPerElementOfItsRange) {
  policy::testing::one_thread();
  const auto [world, sharding] = GetParam();
  const std::string what = std::string(sharding) + " on " + std::to_string(world) + " ranks";
  auto ranks = run(world, {{"AHA_TEST_SHARDING", sharding}, {"AHA_TEST_LAST", std::to_string(kSteps)}});
  ASSERT_EQ(ranks.size(), size_t(world));
  expect_reference(ranks, reference(kSteps), what);
  int64_t sum = 0;
  for (int r = 0; r < world; ++r) {
    // The layout's share (shard_layout.h: balanced by elements, lower ranks first), and in it
    // a float32 master and two float32 moments per element: the plan's 12 bytes / world.
    const auto [begin, end] = share_of(kMastersElements, r, world);
    EXPECT_EQ(ranks[r].begin, begin);
    EXPECT_EQ(ranks[r].end, end);
    EXPECT_EQ(ranks[r].state_bytes, 12 * (end - begin)) << what << ", rank " << r;
    sum += ranks[r].state_bytes;
  }
  EXPECT_EQ(sum, 12 * kMastersElements);

  // Clipped in every step (the norm is about 1.9): the coefficient comes from the norm summed
  // by ranges, which may round differently from the whole one (sharded_adamw.h), so the masters
  // agree to float32 rounding and the weights to at most one bf16 step.
  auto clipped = run(world, {{"AHA_TEST_SHARDING", sharding}, {"AHA_TEST_LAST", std::to_string(kSteps)},
                             {"AHA_TEST_CLIP", "0.5"}});
  ASSERT_EQ(clipped.size(), size_t(world));
  const auto ref = reference(kSteps, 0.5);
  for (int r = 0; r < world; ++r) {
    const auto& run = clipped[r];
    EXPECT_TRUE(torch::allclose(run.masters, ref.masters.narrow(0, run.begin, run.end - run.begin), 1e-6, 1e-7))
        << what << " clipped, rank " << r;
    for (size_t i = 0; i < run.weights.size(); ++i)
      EXPECT_TRUE(torch::allclose(run.weights[i].to(torch::kFloat32), ref.weights[i].to(torch::kFloat32), 1.0 / 128, 0))
          << what << " clipped, rank " << r << " p" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, ZeroMasters,
                         ::testing::Values(Case{2, "zero1"}, Case{2, "zero2"}, Case{4, "zero1"}, Case{4, "zero2"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.sharding) + "_" + std::to_string(info.param.world) + "ranks";
                         });

// A bf16 model with a float32 parameter (as DeepSeek-V3's router gate and e_score_correction_bias)
// under zero1/zero2 with float32 masters: the same weights and masters as the unsharded masters
// optimizer bit for bit, in rounds of the bucket's size and of 2 elements, and the weights
// all-gathered per dtype (sharded_adamw.h): per step each rank gives the longest rank's count of
// bf16 elements in bf16 and of float32 elements in float32. p0 float32: on 2 ranks 10 bf16 and
// 3 float32 elements, 32 bytes where a float32 gather of the 10-element ranges moves 40; on 3
// ranks 7 and 3, 26 bytes, not 28. p2 float32 (12 of the 20 elements, massed in the last ranks'
// ranges): per dtype would move more (56 on 2 ranks, 38 on 3), so everything goes in float32
// (40, 28) as before.
struct MixedCase {
  int world;
  const char* sharding;
  int float32_param;
  int64_t bytes_per_step;
};

class ZeroMastersMixed : public ::testing::TestWithParam<MixedCase> {};

TEST_P(ZeroMastersMixed, EqualsTheUnshardedMastersAndGathersEachDtypeInItsOwn) {
  policy::testing::one_thread();
  const auto [world, sharding, float32_param, bytes_per_step] = GetParam();
  const std::string what =
      std::string(sharding) + " on " + std::to_string(world) + " ranks, p" + std::to_string(float32_param) + " float32";
  const auto ref = reference(kSteps, 0, -1, float32_param);
  ASSERT_EQ(ref.weights[float32_param].scalar_type(), torch::kFloat32);
  std::map<std::string, std::string> env = {{"AHA_TEST_SHARDING", sharding},
                                            {"AHA_TEST_LAST", std::to_string(kSteps)},
                                            {"AHA_TEST_FLOAT32_PARAM", std::to_string(float32_param)}};
  auto ranks = run(world, env);
  ASSERT_EQ(ranks.size(), size_t(world));
  expect_reference(ranks, ref, what);
  env["AHA_TEST_GATHER_ROUND"] = "2";  // pieces split across rounds
  auto rounds = run(world, env);
  ASSERT_EQ(rounds.size(), size_t(world));
  expect_reference(rounds, ref, what + ", rounds of 2");

  // The bytes from the layout: per dtype, the most elements of it any rank holds, or everything
  // in float32, whichever moves fewer.
  const parallel::ShardLayout layout({3, 5, 12}, world);
  int64_t bf16 = 0, float32 = 0;
  for (int r = 0; r < world; ++r) {
    int64_t b = 0, f = 0;
    for (const auto& piece : layout.pieces_of(r)) (int(piece.param) == float32_param ? f : b) += piece.length;
    bf16 = std::max(bf16, b);
    float32 = std::max(float32, f);
  }
  EXPECT_EQ(std::min(2 * bf16 + 4 * float32, 4 * layout.max_shard()), bytes_per_step);
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(ranks[r].gathered_bytes, kSteps * bytes_per_step) << what << ", rank " << r;
    EXPECT_EQ(rounds[r].gathered_bytes, kSteps * bytes_per_step) << what << ", rounds of 2, rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, ZeroMastersMixed,
                         ::testing::Values(MixedCase{2, "zero1", 0, 32}, MixedCase{2, "zero2", 0, 32},
                                           MixedCase{3, "zero1", 0, 26}, MixedCase{3, "zero2", 0, 26},
                                           MixedCase{2, "zero2", 2, 40}, MixedCase{3, "zero1", 2, 28}),
                         [](const ::testing::TestParamInfo<MixedCase>& info) {
                           return std::string(info.param.sharding) + "_" + std::to_string(info.param.world) +
                                  "ranks_p" + std::to_string(info.param.float32_param) + "_float32";
                         });

// optimizer_masters_test.cpp's check under zero2: 20 updates of about lr = 1e-3 to a weight of
// 3.0, where bf16's spacing is 1/64, move it with masters and are rounded away without.
TEST(ZeroMastersUpdates, SmallUpdatesAccumulateUnderZero2) {
  policy::testing::one_thread();
  auto with = run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", "20"}});
  auto without = run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", "20"}, {"AHA_TEST_MASTERS", "0"}});
  ASSERT_EQ(with.size(), 2u);
  ASSERT_EQ(without.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(without[r].weights[0][2].item<float>(), 3.0f) << r;
    EXPECT_NEAR(with[r].weights[0][2].item<float>(), 3.0f + 20e-3f, 8e-3f) << r;
    EXPECT_NE(with[r].weights[0][2].item<float>(), 3.0f) << r;
  }
}

// p0 written to 2.0 on every rank before step 5 (a weight load): each rank's masters of it start
// again from the new weights, as the unsharded optimizer's do, instead of writing the old
// values back with the next gather.
TEST(ZeroMastersUpdates, AWeightWrittenBetweenStepsReseedsTheRanksMasters) {
  policy::testing::one_thread();
  auto ranks = run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", "8"}, {"AHA_TEST_WRITE_AT", "5"}});
  ASSERT_EQ(ranks.size(), 2u);
  const auto ref = reference(8, 0, 5);
  expect_reference(ranks, ref, "zero2 with a write before step 5");
  EXPECT_LT((ref.weights[0] - 2.0).abs().max().item<float>(), 0.01);  // from 2.0, not from the old weights
}

TEST(ZeroMastersCheckpoint, ResumesBitForBitUnderTheSameAndOtherLayouts) {
  policy::testing::one_thread();
  const auto ref = reference(kSteps);
  const fs::path two = scratch("two"), four = scratch("four"), whole = scratch("whole");
  const std::string last = std::to_string(kSteps), first = std::to_string(kSaveAt);
  auto resume = [&](int world, const char* sharding, const fs::path& from, const std::string& what) {
    auto ranks = run(world, {{"AHA_TEST_SHARDING", sharding}, {"AHA_TEST_LOAD", from.string()},
                             {"AHA_TEST_FIRST", first}, {"AHA_TEST_LAST", last}});
    ASSERT_EQ(ranks.size(), size_t(world)) << what;
    for (const auto& r : ranks) EXPECT_EQ(r.steps, kSteps) << what;
    expect_reference(ranks, ref, what);
  };
  ASSERT_EQ(run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", first}, {"AHA_TEST_SAVE", two.string()}}).size(), 2u);
  EXPECT_NE(read_file(two / "optimizer" / "index.json").find("\"format\":2"), std::string::npos);
  resume(2, "zero2", two, "zero2 on 2 ranks -> the same");
  resume(4, "zero1", two, "zero2 on 2 ranks -> zero1 on 4");
  ASSERT_EQ(run(4, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", first}, {"AHA_TEST_SAVE", four.string()}}).size(), 4u);
  resume(2, "zero2", four, "zero2 on 4 ranks -> zero2 on 2");

  {  // zero2 on 2 ranks -> one unsharded process: its masters whole from the pieces.
    auto p = masters_params();
    std::vector<torch::Tensor> weights;
    torch::load(weights, (two / "weights.pt").string());
    {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < weights.size(); ++i) p.named()[i].second.copy_(weights[i]);
    }
    policy::Optimizer opt(p.groups(), masters_options(true, 0));
    opt.load_shards(two / "optimizer", p.named());
    masters_steps(opt, p, kSaveAt, kSteps);
    expect_equal(masters_weights(p), ref.weights, "zero2 on 2 ranks -> unsharded");
  }
  {  // One unsharded process's optimizer.pt -> zero2 and zero1 on 2 ranks.
    auto p = masters_params();
    policy::Optimizer opt(p.groups(), masters_options(true, 0));
    masters_steps(opt, p, 0, kSaveAt);
    fs::create_directories(whole);
    torch::save(masters_weights(p), (whole / "weights.pt").string());
    opt.save(whole / "optimizer.pt");
    resume(2, "zero2", whole, "unsharded -> zero2 on 2 ranks");
    resume(2, "zero1", whole, "unsharded -> zero1 on 2 ranks");
  }
  for (const auto& d : {two, four, whole}) remove_tree(d);
}

// Shards written without masters (a bf16 run, or before masters were sharded: the same format
// 2): a masters run resumed from them starts its masters from the weights, as optimizer.h's
// load() of a bf16 state does.
TEST(ZeroMastersCheckpoint, ShardsWithoutMastersStartThemFromTheWeights) {
  policy::testing::one_thread();
  const fs::path dir = scratch("bf16");
  ASSERT_EQ(run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LAST", std::to_string(kSaveAt)},
                    {"AHA_TEST_MASTERS", "0"}, {"AHA_TEST_SAVE", dir.string()}})
                .size(),
            2u);
  EXPECT_EQ(read_file(dir / "optimizer" / "index.json").find("master"), std::string::npos);
  auto ranks = run(2, {{"AHA_TEST_SHARDING", "zero2"}, {"AHA_TEST_LOAD", dir.string()},
                       {"AHA_TEST_FIRST", std::to_string(kSaveAt)}, {"AHA_TEST_LAST", std::to_string(kSaveAt)}});
  ASSERT_EQ(ranks.size(), 2u);
  std::vector<torch::Tensor> saved;
  torch::load(saved, (dir / "weights.pt").string());
  std::vector<torch::Tensor> flat;
  for (const auto& w : saved) flat.push_back(w.reshape({-1}).to(torch::kFloat32));
  const auto weights = torch::cat(flat);
  for (const auto& r : ranks) {
    EXPECT_EQ(r.steps, kSaveAt);
    EXPECT_TRUE(torch::equal(r.masters, weights.narrow(0, r.begin, r.end - r.begin)));
  }
  remove_tree(dir);
}

// master_of's look-ups (optimizer.h indexes the masters) under zero1 with rank-local parameters:
// zero_masters_scenario.cpp's masters_lookup checks on each rank that every one of 120
// parameters finds its own master or none, that the shards' pieces hold their own masters, before
// and after a step, and that an unsharded optimizer.pt loaded into it leaves exactly the
// rank-local parameters' state.
TEST(ZeroMastersLookup, EachParameterAndPieceFindsItsOwnMasterOnTwoAndThreeRanks) {
  policy::testing::one_thread();
  for (int world : {2, 3}) {
    const std::string out = scratch("lookup").string();
    auto ranks = run_world("masters_lookup", world, {{"AHA_PARALLEL_OUT", out}});
    for (int r = 0; r < world; ++r)
      EXPECT_EQ(ranks[r].exit_code, 0) << world << " ranks, rank " << r << ":\n" << ranks[r].stderr_text;
  }
}

}  // namespace
}  // namespace aha::parallel::testing
