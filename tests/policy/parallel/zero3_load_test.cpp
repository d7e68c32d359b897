// ZeRO-3's sharded load (policy/learner/fully_sharded.h's load_model_sharded), in one process for
// each rank of a world of 2 and of 3 (it needs no communicator): a rank's float32 master range is
// the same range of the whole model loaded the old way (load_model in float32, flattened in
// parameter order, ranges balanced by element count as share_of splits them), bit for bit, for
// one file, ten files with an index, MoE experts per expert and stacked, and bf16 files; the
// parameters hold no memory; the CPU memory allocated while loading is at most the master range
// plus one tensor, never the whole float32 model (counted by a CPU allocator of the test's own);
// a bad model directory is load_model's error, word for word. With expert parallelism: the range
// is the replicated parameters' and each rank's experts are its slice, read alone (the other
// ranks' experts are never allocated); a dense model or indivisible experts are errors.
#include <gtest/gtest.h>

#include <c10/core/CPUAllocator.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/expert_parallel.h"
#include "policy/learner/fully_sharded.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"
#include "policy/parallel/communicator.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/cpu_peak.h"
#include "tests/policy/parallel/zero3_load_models.h"

namespace aha::parallel::testing {
namespace {
namespace fs = std::filesystem;

// The old way: the whole model in float32, its parameters flattened in order.
torch::Tensor whole_flat(const std::string& dir) {
  auto model = load_model(dir, {torch::kCPU, torch::kFloat32});
  std::vector<torch::Tensor> flat;
  for (auto& p : model->parameters()) flat.push_back(p.detach().reshape({-1}));
  return torch::cat(flat);
}

TEST(Zero3Load, EachRankReadsExactlyItsRangeOfTheWholeModel) {
  policy::testing::one_thread();
  for (const auto& dir : {kTied, kSplit, kMoe, stacked_moe(), bf16_tied()}) {
    const auto whole = whole_flat(dir);
    for (int world : {2, 3}) {
      bool cuts_a_tensor = false;
      for (int rank = 0; rank < world; ++rank) {
        const std::string what = dir + ", rank " + std::to_string(rank) + " of " + std::to_string(world);
        auto sharded = policy::load_model_sharded(dir, rank, world, torch::kCPU);
        const auto [begin, end] = share_of(whole.numel(), rank, world);
        ASSERT_EQ(sharded.master.numel(), end - begin) << what;
        EXPECT_EQ(sharded.master.scalar_type(), torch::kFloat32) << what;
        EXPECT_TRUE(torch::equal(sharded.master, whole.narrow(0, begin, end - begin))) << what;
        int64_t start = 0;
        for (const auto& [name, p] : sharded.model->named_parameters()) {
          EXPECT_EQ(p.storage().nbytes(), 0u) << what << ": " << name << " holds memory";
          if (begin > start && begin < start + p.numel()) cuts_a_tensor = true;
          start += p.numel();
        }
      }
      EXPECT_TRUE(cuts_a_tensor) << dir << ": no range of " << world << " starts inside a tensor";
    }
  }
}

TEST(Zero3Load, AllocatesTheMasterRangeAndOneTensorNeverTheWholeModel) {
  policy::testing::one_thread();
  for (const auto& dir : {kSplit, stacked_moe()}) {
    auto whole = load_model(dir, {torch::kCPU, torch::kFloat32});
    int64_t total = 0, largest = 0;
    for (auto& p : whole->parameters()) {
      total += p.numel();
      largest = std::max(largest, p.numel());
    }
    whole.reset();
    constexpr int kWorld = 3;
    // Small tables besides (the rotary frequencies): far below a tensor of these models.
    constexpr int64_t kSlack = 4096;
    for (int rank = 0; rank < kWorld; ++rank) {
      const auto [begin, end] = share_of(total, rank, kWorld);
      const int64_t bound = 4 * (end - begin) + 4 * largest + kSlack;
      // The whole float32 model on top of the range would exceed the bound: the test can fail.
      ASSERT_GT(4 * total, bound) << dir;
      policy::ShardedModel sharded;
      const int64_t peak = peak_cpu_bytes([&] { sharded = policy::load_model_sharded(dir, rank, kWorld, torch::kCPU); });
      EXPECT_LE(peak, bound) << dir << " rank " << rank << ": " << peak << " bytes at the peak, the whole model is "
                             << 4 * total << ", the range " << 4 * (end - begin);
      EXPECT_GE(peak, 4 * (end - begin)) << dir << " rank " << rank << ": the master range itself is allocated";
    }
  }
}

// With expert parallelism (load_model_sharded's expert_parallel): the master range is that of
// the replicated parameters (every one but the routed experts) flattened in order, and each
// expert tensor holds exactly this rank's slice of the experts (rank r: [r E/W, (r+1) E/W)) of the
// whole model, in float32, for experts per expert as on the hub and stacked; the replicated
// parameters hold no memory.
TEST(Zero3Load, ExpertParallelReadsTheReplicatedRangeAndItsOwnExperts) {
  policy::testing::one_thread();
  for (const auto& dir : {kMoe, stacked_moe(), kDeepSeek}) {
    auto whole = load_model(dir, {torch::kCPU, torch::kFloat32});
    std::vector<torch::Tensor> replicated;
    std::map<std::string, torch::Tensor> experts;
    for (auto& [name, p] : whole->named_parameters()) {
      if (policy::is_routed_expert_parameter(name))
        experts[name] = p.detach();
      else
        replicated.push_back(p.detach().reshape({-1}));
    }
    ASSERT_FALSE(experts.empty()) << dir;
    const auto flat = torch::cat(replicated);
    const int64_t E = whole->config().num_experts;
    for (int world : {2, 4}) {
      for (int rank = 0; rank < world; ++rank) {
        const std::string what = dir + ", rank " + std::to_string(rank) + " of " + std::to_string(world);
        auto sharded = policy::load_model_sharded(dir, rank, world, torch::kCPU, /*expert_parallel=*/true);
        EXPECT_TRUE(sharded.expert_parallel) << what;
        const auto [begin, end] = share_of(flat.numel(), rank, world);
        ASSERT_EQ(sharded.master.numel(), end - begin) << what;
        EXPECT_TRUE(torch::equal(sharded.master, flat.narrow(0, begin, end - begin))) << what;
        for (const auto& [name, p] : sharded.model->named_parameters()) {
          if (!policy::is_routed_expert_parameter(name)) {
            EXPECT_EQ(p.storage().nbytes(), 0u) << what << ": " << name << " holds memory";
            continue;
          }
          const auto want = experts.at(name).narrow(0, rank * (E / world), E / world);
          EXPECT_EQ(p.scalar_type(), torch::kFloat32) << what << ": " << name;
          EXPECT_TRUE(torch::equal(p.detach(), want)) << what << ": " << name << " is not this rank's experts";
          EXPECT_EQ(p.storage().nbytes(), size_t(4 * want.numel())) << what << ": " << name;
        }
      }
    }
  }
}

// The memory of that load: the master range, the rank's experts and one read buffer at the
// peak; the other ranks' experts are never allocated (counted by the test's CPU allocator).
TEST(Zero3Load, ExpertParallelNeverAllocatesTheOtherRanksExperts) {
  policy::testing::one_thread();
  const std::string dir = kDeepSeek;  // experts per expert in the files, as on the hub
  auto whole = load_model(dir, {torch::kCPU, torch::kFloat32});
  int64_t replicated = 0, experts = 0, largest = 0;
  for (auto& [name, p] : whole->named_parameters()) {
    (policy::is_routed_expert_parameter(name) ? experts : replicated) += p.numel();
    if (!policy::is_routed_expert_parameter(name)) largest = std::max(largest, p.numel());
  }
  const int64_t expert_numel = whole->config().moe_intermediate_size * whole->config().hidden_size * 2;
  largest = std::max(largest, expert_numel);  // the largest tensor in the files: one read buffer
  whole.reset();
  constexpr int kWorld = 2;
  constexpr int64_t kSlack = 4096;  // small tables besides (the rotary frequencies, the routing bias)
  for (int rank = 0; rank < kWorld; ++rank) {
    const auto [begin, end] = share_of(replicated, rank, kWorld);
    const int64_t held = 4 * ((end - begin) + experts / kWorld);
    const int64_t bound = held + 4 * largest + kSlack;
    // Every expert (the other rank's too) on top of the range would exceed the bound: the test can fail.
    ASSERT_GT(4 * ((end - begin) + experts), bound) << dir;
    policy::ShardedModel sharded;
    const int64_t peak = peak_cpu_bytes(
        [&] { sharded = policy::load_model_sharded(dir, rank, kWorld, torch::kCPU, /*expert_parallel=*/true); });
    EXPECT_LE(peak, bound) << "rank " << rank << ": " << peak << " bytes at the peak, the range and the rank's experts "
                           << held << ", every expert " << 4 * experts;
    EXPECT_GE(peak, held) << "rank " << rank << ": the range and the experts are themselves allocated";
  }
}

// A copy of the tied model's directory whose model.norm.weight is replaced by `replacement`
// (undefined: left out).
fs::path broken_model(const std::string& what, const torch::Tensor& replacement) {
  const fs::path dir = fs::temp_directory_path() / ("aha-zero3-load-" + what + "-" + std::to_string(::getpid()));
  remove_tree(dir);
  fs::create_directories(dir);
  fs::copy_file(fs::path(kTied) / "config.json", dir / "config.json");
  const SafetensorsFile file(fs::path(kTied) / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& e : file.entries()) {
    if (e.name != "model.norm.weight")
      tensors.emplace_back(e.name, file.view(e.name));
    else if (replacement.defined())
      tensors.emplace_back(e.name, replacement);
  }
  save_safetensors(dir / "model.safetensors", tensors);
  return dir;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Zero3Load, ABadModelIsLoadModelsErrorOnEveryRank) {
  const int64_t hidden = ModelConfig::from_file(fs::path(kTied) / "config.json").hidden_size;
  const std::vector<std::pair<std::string, torch::Tensor>> cases = {
      {"missing", torch::Tensor()},
      {"shape", torch::ones({hidden + 1})},
      {"dtype", torch::ones({hidden}, torch::kInt32)}};
  for (const auto& [what, replacement] : cases) {
    const fs::path dir = broken_model(what, replacement);
    const std::string expected = error_of([&] { load_model(dir); });
    EXPECT_NE(expected, "no error") << what;
    EXPECT_NE(expected.find("model.norm.weight"), std::string::npos) << expected;
    for (int rank = 0; rank < 2; ++rank)
      EXPECT_EQ(error_of([&] { policy::load_model_sharded(dir, rank, 2, torch::kCPU); }), expected) << what;
    remove_tree(dir);
  }
}

// A trainer made from a sharded load is ZeRO-3 data parallel from the start: another sharding,
// or no communicator to shard over, is refused with the reason.
TEST(Zero3Load, ATrainerMadeFromTheShardIsZero3Only) {
  policy::testing::one_thread();
  policy::TrainerOptions options;
  for (auto sharding : {policy::Sharding::zero2, policy::Sharding::zero3}) {
    options.sharding = sharding;
    const auto error =
        error_of([&] { policy::GrpoTrainer t(policy::load_model_sharded(kTied, 0, 2, torch::kCPU), options, nullptr); });
    EXPECT_NE(error.find("trains under sharding zero3 on 2 ranks or more"), std::string::npos)
        << policy::sharding_name(sharding) << ": " << error;
  }
}

// Expert parallelism needs an MoE model whose experts divide by the world size: said by the
// sharded load itself, on every rank, before anything is read.
TEST(Zero3Load, ExpertParallelRefusesADenseModelAndIndivisibleExperts) {
  const auto dense = error_of([&] { policy::load_model_sharded(kTied, 0, 2, torch::kCPU, true); });
  EXPECT_NE(dense.find("needs a mixture-of-experts model"), std::string::npos) << dense;
  const auto three = error_of([&] { policy::load_model_sharded(kMoe, 1, 3, torch::kCPU, true); });
  EXPECT_NE(three.find("4 routed experts cannot be split evenly over 3 ranks"), std::string::npos) << three;
}

}  // namespace
}  // namespace aha::parallel::testing
