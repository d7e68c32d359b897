// ZeRO-1/2 (policy/learner/sharded_adamw.h) on 2 and 4 Gloo ranks against plain data
// parallelism at the same world size and one process on the whole batch: the same weights after
// steps with and without clipping, each rank holding 1/world of the AdamW state (counted in
// bytes, against the unsharded ranks' own count); and sharded checkpoints (optimizer_shards.h)
// resumed at another world size, under another sharding, unsharded, bit for bit at the same
// world size, and damaged or missing shards named.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/checkpoint.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/parallel/weights_near.h"
#include "tests/policy/parallel/world_runner.h"
#include "tests/policy/parallel/zero_run.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kSteps = 3;

// One process, the whole batch, no sharding: weights after kSteps steps.
struct Reference {
  std::vector<torch::Tensor> weights;
  std::vector<double> grad_norms;
  int64_t elements = 0, skipped = 0;
};

const Reference& reference() {
  static const Reference ref = [] {
    Reference r;
    auto trainer = zero_trainer(policy::Sharding::none);
    for (auto& p : trainer->policy().parameters()) r.elements += p.numel();
    for (int64_t k = 0; k < kSteps; ++k) {
      r.grad_norms.push_back(trainer->train_step(zero_batch(k)).grad_norm);
    }
    for (auto& p : trainer->policy().parameters()) r.weights.push_back(p.detach().clone());
    r.skipped = trainer->optimizer().skipped_steps();
    return r;
  }();
  return ref;
}

fs::path scratch(const std::string& what) {
  return fs::temp_directory_path() / ("aha-zero-" + what + "-" + std::to_string(::getpid()));
}

struct RankResult {
  std::vector<torch::Tensor> weights;
  int64_t state_bytes = 0, gradient_bytes = 0, skipped = 0;
};

// Runs zero_train on `world` ranks and returns each rank's result.
std::vector<RankResult> train(int world, const std::string& sharding, int64_t steps, const fs::path& load = {},
                              const fs::path& save = {}) {
  std::map<std::string, std::string> env = {{"AHA_TEST_SHARDING", sharding},
                                            {"AHA_TEST_STEPS", std::to_string(steps)},
                                            {"AHA_TEST_GATHER_ROUND", "1000"}};
  if (!load.empty()) env["AHA_TEST_LOAD"] = load.string();
  if (!save.empty()) env["AHA_TEST_SAVE"] = save.string();
  return run_world_results<RankResult>("zero_train", world, env, [](const RankFiles& files, RankResult& x) {
    torch::load(x.weights, files.path(".weights.pt"));
    files.numbers() >> x.state_bytes >> x.gradient_bytes >> x.skipped;
  });
}

struct ZeroCase {
  int world;
  const char* sharding;
};
void PrintTo(const ZeroCase& c, std::ostream* os) { *os << c.sharding << " on " << c.world << " ranks"; }

class ZeroSharding : public ::testing::TestWithParam<ZeroCase> {};

// Plain data parallelism (sharding none) at a world size, run once per test process.
const std::vector<RankResult>& plain(int world) {
  static std::map<int, std::vector<RankResult>> runs;
  if (!runs.count(world)) runs[world] = train(world, "none", kSteps);
  return runs[world];
}

TEST_P(ZeroSharding, MatchesDataParallelAndHoldsItsShareOfTheState) {
  policy::testing::one_thread();
  const auto [world, sharding] = GetParam();
  const auto& ref = reference();
  // The run is worth comparing: clipping acts on some step, nothing is skipped.
  EXPECT_GT(*std::max_element(ref.grad_norms.begin(), ref.grad_norms.end()), kZeroMaxGradNorm);
  EXPECT_EQ(ref.skipped, 0);

  const auto& dp = plain(world);
  ASSERT_EQ(dp.size(), static_cast<size_t>(world));
  auto ranks = train(world, sharding, kSteps);
  ASSERT_EQ(ranks.size(), static_cast<size_t>(world));
  int64_t state_sum = 0;
  for (int r = 0; r < world; ++r) {
    const std::string what = std::string(sharding) + " rank " + std::to_string(r);
    expect_weights_near(ranks[r].weights, dp[r].weights, what + " against plain data parallelism");
    expect_weights_near(ranks[r].weights, ref.weights, what + " against one process");
    EXPECT_EQ(ranks[r].skipped, 0);
    // Unsharded, a rank holds both fp32 moments of every element and every gradient.
    EXPECT_EQ(dp[r].state_bytes, 2 * 4 * ref.elements);
    EXPECT_EQ(dp[r].gradient_bytes, 4 * ref.elements);
    // Sharded, the moments of its share only (and, ZeRO-2, that share's gradient).
    const auto [begin, end] = share_of(ref.elements, r, world);
    EXPECT_EQ(ranks[r].state_bytes, 2 * 4 * (end - begin)) << what;
    EXPECT_LE(ranks[r].state_bytes * world, dp[r].state_bytes + 2 * 4 * world) << what << " holds more than 1/" << world;
    const int64_t gradient = std::string(sharding) == "zero2" ? 4 * (end - begin) : 4 * ref.elements;
    EXPECT_EQ(ranks[r].gradient_bytes, gradient) << what;
    state_sum += ranks[r].state_bytes;
  }
  EXPECT_EQ(state_sum, dp[0].state_bytes);
}

INSTANTIATE_TEST_SUITE_P(Worlds, ZeroSharding,
                         ::testing::Values(ZeroCase{2, "zero1"}, ZeroCase{2, "zero2"}, ZeroCase{4, "zero1"},
                                           ZeroCase{4, "zero2"}),
                         [](const ::testing::TestParamInfo<ZeroCase>& info) {
                           return std::string(info.param.sharding) + "_" + std::to_string(info.param.world) + "ranks";
                         });

// Weights after kSteps steps, trained kSteps - 1 steps, saved, and resumed for the last one.
TEST(ZeroCheckpoint, ResumesAtAnotherWorldSizeAnotherShardingAndUnsharded) {
  policy::testing::one_thread();
  const auto& ref = reference();
  const fs::path four = scratch("four"), two = scratch("two");
  const fs::path saved_four = four / ("step-" + std::to_string(kSteps - 1));
  const fs::path saved_two = two / ("step-" + std::to_string(kSteps - 1));

  // Saved by 4 ranks: one file per rank, keyed by name and offset, the index naming the world.
  ASSERT_EQ(train(4, "zero2", kSteps - 1, {}, four).size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(fs::exists(saved_four / "optimizer" / ("rank-" + std::to_string(r) + ".safetensors"))) << r;
    EXPECT_TRUE(fs::exists(saved_four / "rng" / ("rank-" + std::to_string(r) + ".pt"))) << r;
  }
  EXPECT_NE(read_file(saved_four / "optimizer" / "index.json").find("\"world_size\":4"), std::string::npos);
  EXPECT_FALSE(fs::exists(saved_four / "optimizer.pt"));

  // 4 -> 2, zero2 -> zero1.
  auto resumed = train(2, "zero1", 1, saved_four);
  ASSERT_EQ(resumed.size(), 2u);
  for (int r = 0; r < 2; ++r) expect_weights_near(resumed[r].weights, ref.weights, "4 -> 2, rank " + std::to_string(r));

  // Sharded -> unsharded: one process on the whole batch.
  {
    auto trainer = zero_trainer(policy::Sharding::none);
    policy::load_checkpoint(saved_four, *trainer);
    EXPECT_EQ(trainer->optimizer().step_count(), kSteps - 1);
    trainer->train_step(zero_batch(kSteps - 1));
    std::vector<torch::Tensor> weights;
    for (auto& p : trainer->policy().parameters()) weights.push_back(p.detach().clone());
    expect_weights_near(weights, ref.weights, "4 ranks -> one process");
  }

  // 2 -> 4, zero2 -> zero1; and 2 -> 2 continues bit for bit.
  ASSERT_EQ(train(2, "zero2", kSteps - 1, {}, two).size(), 2u);
  auto grown = train(4, "zero1", 1, saved_two);
  ASSERT_EQ(grown.size(), 4u);
  for (int r = 0; r < 4; ++r) expect_weights_near(grown[r].weights, ref.weights, "2 -> 4, rank " + std::to_string(r));
  auto same = train(2, "zero2", 1, saved_two);
  auto straight = train(2, "zero2", kSteps);
  ASSERT_EQ(same.size(), 2u);
  ASSERT_EQ(straight.size(), 2u);
  for (int r = 0; r < 2; ++r)
    for (size_t i = 0; i < same[r].weights.size(); ++i)
      EXPECT_TRUE(torch::equal(same[r].weights[i], straight[r].weights[i])) << "rank " << r << " weight " << i;
  remove_tree(four);
  remove_tree(two);
}

TEST(ZeroCheckpoint, DamagedOrMissingShardIsAnErrorNamingTheFile) {
  policy::testing::one_thread();
  const fs::path stage = scratch("damaged");
  ASSERT_EQ(train(2, "zero1", 1, {}, stage).size(), 2u);
  const fs::path saved = stage / "step-1";
  auto load_error = [&](const fs::path& dir) -> std::string {
    auto trainer = zero_trainer(policy::Sharding::none);
    try {
      policy::load_checkpoint(dir, *trainer);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  ASSERT_EQ(load_error(saved), "");  // intact, it loads

  auto damaged = [&](const std::string& name, const std::function<void(const fs::path&)>& damage) {
    const fs::path copy = stage / name;
    fs::copy(saved, copy, fs::copy_options::recursive);
    damage(copy / "optimizer");
    return load_error(copy);
  };
  const std::string truncated = damaged("truncated", [](const fs::path& dir) {
    fs::resize_file(dir / "rank-1.safetensors", fs::file_size(dir / "rank-1.safetensors") - 16);
  });
  EXPECT_NE(truncated.find("rank-1.safetensors"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find("truncated"), std::string::npos) << truncated;

  const std::string missing = damaged("missing", [](const fs::path& dir) { fs::remove(dir / "rank-0.safetensors"); });
  EXPECT_NE(missing.find("rank-0.safetensors"), std::string::npos) << missing;
  EXPECT_NE(missing.find("missing"), std::string::npos) << missing;

  // The same size, one byte of a moment changed: only the CRC can tell.
  const std::string corrupt = damaged("corrupt", [](const fs::path& dir) {
    const fs::path file = dir / "rank-1.safetensors";
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-5, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-5, std::ios::end);
    f.put(static_cast<char>(c ^ 0x40));
  });
  EXPECT_NE(corrupt.find("rank-1.safetensors"), std::string::npos) << corrupt;
  EXPECT_NE(corrupt.find("CRC"), std::string::npos) << corrupt;
  remove_tree(stage);
}

}  // namespace
}  // namespace aha::parallel::testing
