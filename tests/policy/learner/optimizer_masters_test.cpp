// Float32 master weights of bf16 parameters (OptimizerOptions::fp32_master): the masters follow
// float32 AdamW exactly, the weights are their rounding, updates that bf16 would round away
// accumulate, a resume carries the masters, a weight written elsewhere re-seeds its master, and
// each of many parameters finds its own master; masters saved as pieces of sharded checkpoints
// are read whole, and bad ones refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "policy/learner/optimizer.h"
#include "policy/learner/optimizer_shards.h"

namespace {

using aha::policy::Optimizer;
using aha::policy::OptimizerOptions;

torch::Tensor leaf(std::vector<float> values, torch::ScalarType dtype) {
  return torch::tensor(values, torch::kFloat32).to(dtype).requires_grad_(true);
}

// Gradients that bf16 holds exactly (multiples of 1/64 below 4), so the bf16 and float32 runs see
// the same numbers and any difference comes from the optimizer.
std::vector<float> grads_of(int k) { return {0.25f - k / 64.0f, 1.5f, -0.75f + k / 32.0f}; }

void set_grad(torch::Tensor& p, const std::vector<float>& g) {
  p.mutable_grad() = torch::tensor(g, torch::kFloat32).to(p.scalar_type());
}

OptimizerOptions options(bool master) {
  OptimizerOptions o;
  o.lr = 1e-3;
  o.max_grad_norm = 0.5;  // every step clips: the norm is about 1.7
  o.fp32_master = master;
  return o;
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("aha_masters_" + std::to_string(::getpid()) + "_" + name);
}

// The masters are allocated when first needed, not by the constructor: a run that shards its
// optimizer next (zero1/zero2) keeps only its range, so it must never hold the whole float32 copy.
TEST(OptimizerMasters, AreAllocatedAtTheFirstStepNotBeforeAndStartFromTheWeights) {
  const std::vector<float> start = {1.0f, -0.5f, 3.0f};
  auto p = leaf(start, torch::kBFloat16);
  Optimizer opt({{"w", {p}, 0.01, 1.0}}, options(true));
  EXPECT_EQ(opt.state_bytes(), 0) << "the constructor allocated float32 masters";
  set_grad(p, grads_of(0));
  opt.step();
  // 3 float32 masters and 2 x 3 float32 moments.
  EXPECT_EQ(opt.state_bytes(), 9 * 4);
  // The first step started from the weights: as a float32 AdamW from the same values.
  auto ref = leaf(start, torch::kFloat32);
  Optimizer float32({{"w", {ref}, 0.01, 1.0}}, options(false));
  set_grad(ref, grads_of(0));
  float32.step();
  EXPECT_TRUE(torch::equal(opt.master_of(p), ref.detach()));
}

TEST(OptimizerMasters, MastersFollowFloat32AdamWAndTheWeightsAreTheirRounding) {
  const std::vector<float> start = {1.0f, -0.5f, 3.0f};
  auto p = leaf(start, torch::kBFloat16);     // bf16 weights, float32 masters
  auto ref = leaf(start, torch::kFloat32);    // the same update in float32
  auto plain = leaf(start, torch::kBFloat16); // bf16 weights and moments, no masters
  Optimizer with_masters({{"w", {p}, 0.01, 1.0}}, options(true));
  Optimizer float32({{"w", {ref}, 0.01, 1.0}}, options(false));
  Optimizer bf16({{"w", {plain}, 0.01, 1.0}}, options(false));
  ASSERT_TRUE(with_masters.master_of(p).defined());
  EXPECT_EQ(with_masters.master_of(p).scalar_type(), torch::kFloat32);
  EXPECT_FALSE(float32.master_of(ref).defined());
  for (int k = 0; k < 20; ++k) {
    set_grad(p, grads_of(k));
    set_grad(ref, grads_of(k));
    set_grad(plain, grads_of(k));
    const auto a = with_masters.step(), b = float32.step();
    bf16.step();
    EXPECT_EQ(a.grad_norm, b.grad_norm) << k;
    EXPECT_FALSE(p.grad().defined()) << "the bf16 gradient is cleared after a step";
  }
  EXPECT_TRUE(torch::equal(with_masters.master_of(p), ref.detach())) << with_masters.master_of(p) << ref;
  EXPECT_TRUE(torch::equal(p.detach(), ref.detach().to(torch::kBFloat16)));
  // Each update is about lr = 1e-3; bf16's spacing at 3.0 is 1/64, so the pure bf16 run rounds
  // every one of them away, while the masters moved the weight up (its gradient is negative in
  // all 20 steps) by about 20 updates' worth, ~0.02.
  EXPECT_EQ(plain[2].item<float>(), 3.0f);
  EXPECT_NE(p[2].item<float>(), 3.0f);
  EXPECT_NEAR(ref[2].item<float>(), 3.0f + 20e-3f, 5e-3f);
  // Moments and masters are float32: 3 tensors of 3 floats.
  EXPECT_EQ(with_masters.state_bytes(), 3 * 3 * 4);
}

TEST(OptimizerMasters, SaveLoadCarriesTheMastersBitIdentically) {
  const auto path = temp_path("state.pt");
  auto p = leaf({1.0f, -0.5f, 3.0f}, torch::kBFloat16);
  Optimizer first({{"w", {p}, 0.01, 1.0}}, options(true));
  for (int k = 0; k < 3; ++k) {
    set_grad(p, grads_of(k));
    first.step();
  }
  first.save(path);
  // What the weights alone hold is less than the masters: a resume from them would differ.
  ASSERT_FALSE(torch::equal(first.master_of(p), p.detach().to(torch::kFloat32)));
  auto p2 = p.detach().clone().requires_grad_(true);
  for (int k = 3; k < 6; ++k) {
    set_grad(p, grads_of(k));
    first.step();
  }
  Optimizer resumed({{"w", {p2}, 0.01, 1.0}}, options(true));
  resumed.load(path);
  for (int k = 3; k < 6; ++k) {
    set_grad(p2, grads_of(k));
    resumed.step();
  }
  EXPECT_TRUE(torch::equal(first.master_of(p), resumed.master_of(p2)));
  EXPECT_TRUE(torch::equal(p.detach(), p2.detach()));

  // A state with other masters' shapes is refused, naming the file, and leaves the optimizer as it was.
  auto q = leaf({1.0f, 2.0f}, torch::kBFloat16);
  Optimizer other({{"w", {q}, 0.01, 1.0}}, options(true));
  try {
    other.load(path);
    FAIL() << "loaded masters of shape [3] for a parameter of shape [2]";
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(other.step_count(), 0);
  std::filesystem::remove(path);
}

// A weight load or sync between steps writes the parameter: its master must start from the new
// value, or the next step would write the old weights back over it.
TEST(OptimizerMasters, AWeightWrittenElsewhereReseedsItsMaster) {
  auto p = leaf({1.0f, -0.5f, 3.0f}, torch::kBFloat16);
  auto o = options(true);
  Optimizer opt({{"w", {p}, 0.0, 1.0}}, o);
  set_grad(p, grads_of(0));
  opt.step();
  {
    torch::NoGradGuard no_grad;
    p.copy_(torch::tensor({2.0f, 2.0f, 2.0f}));
  }
  set_grad(p, {0.0f, 0.0f, 0.0f});  // a zero gradient: AdamW moves only by its first moment
  opt.step();
  auto moved = (opt.master_of(p) - 2.0f).abs().max().item<float>();
  EXPECT_LT(moved, 2e-3f) << opt.master_of(p);  // from 2.0, not from the old weights
  EXPECT_TRUE(torch::equal(p.detach(), opt.master_of(p).to(torch::kBFloat16)));
}

TEST(OptimizerMasters, Bf16StateResumesWithMastersAndAllFloat32IsRefused) {
  const auto path = temp_path("bf16.pt");
  auto p = leaf({1.0f, -0.5f, 3.0f}, torch::kBFloat16);
  Optimizer bf16({{"w", {p}, 0.01, 1.0}}, options(false));
  set_grad(p, grads_of(0));
  bf16.step();
  bf16.save(path);
  auto p2 = p.detach().clone().requires_grad_(true);
  Optimizer resumed({{"w", {p2}, 0.01, 1.0}}, options(true));
  resumed.load(path);  // bf16 moments, no masters: the masters start from the weights
  EXPECT_TRUE(torch::equal(resumed.master_of(p2), p2.detach().to(torch::kFloat32)));
  set_grad(p2, grads_of(1));
  EXPECT_TRUE(resumed.step().applied);
  const auto& state = resumed.adamw().state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(static_cast<const torch::optim::AdamWParamState&>(*state.begin()->second).exp_avg().scalar_type(),
            torch::kFloat32);
  std::filesystem::remove(path);

  auto f = leaf({1.0f}, torch::kFloat32);
  try {
    Optimizer all_float32({{"w", {f}, 0.0, 1.0}}, options(true));
    FAIL() << "fp32_master over float32 parameters only";
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
  }
}

// master_of looks each parameter up in an index (optimizer.h), not by scanning every master: with
// many parameters of mixed dtypes and sizes in two groups, each bf16 one's master is AdamW's own
// tensor at its position and holds its values (each parameter's are its number), before and
// after a step; the first look-up allocates every master (not only the one asked for); float32
// parameters and tensors outside the optimizer have none.
TEST(OptimizerMasters, MasterOfFindsTheOwnMasterOfEachOfManyParameters) {
  constexpr int kParams = 240;  // values up to 239: exact in bf16
  std::vector<torch::Tensor> params;
  std::vector<std::pair<size_t, size_t>> position;  // group, index in it
  std::vector<torch::Tensor> groups[2];
  int64_t bf16_elements = 0;
  for (int i = 0; i < kParams; ++i) {
    const auto dtype = i % 5 == 3 ? torch::kFloat32 : torch::kBFloat16;
    auto p = torch::full({1 + i % 7}, float(i)).to(dtype).requires_grad_(true);
    if (dtype == torch::kBFloat16) bf16_elements += p.numel();
    position.emplace_back(i % 2, groups[i % 2].size());
    groups[i % 2].push_back(p);
    params.push_back(p);
  }
  Optimizer opt({{"decay", groups[0], 0.01, 1.0}, {"no_decay", groups[1], 0.0, 1.0}}, options(true));
  EXPECT_EQ(opt.state_bytes(), 0);
  auto check = [&](const std::string& when) {
    for (int i = 0; i < kParams; ++i) {
      const auto& p = params[i];
      const auto master = opt.master_of(p);
      const auto& [g, j] = position[i];
      const auto& adamw_tensor = opt.adamw().param_groups()[g].params()[j];
      if (p.scalar_type() == torch::kFloat32) {
        EXPECT_FALSE(master.defined()) << when << ": p" << i << " is float32";
        EXPECT_EQ(adamw_tensor.unsafeGetTensorImpl(), p.unsafeGetTensorImpl()) << when << ": p" << i;
        continue;
      }
      ASSERT_TRUE(master.defined()) << when << ": p" << i;
      EXPECT_EQ(master.unsafeGetTensorImpl(), adamw_tensor.unsafeGetTensorImpl()) << when << ": p" << i;
      ASSERT_EQ(master.sizes(), p.sizes()) << when << ": p" << i;
      EXPECT_TRUE(torch::equal(master.to(torch::kBFloat16), p.detach())) << when << ": p" << i;
      EXPECT_LT((master - float(i)).abs().max().item<float>(), 0.01f) << when << ": p" << i << "'s master is another's";
    }
  };
  check("before a step");
  EXPECT_EQ(opt.state_bytes(), 4 * bf16_elements) << "the first look-up allocates every master";
  for (auto& p : params) p.mutable_grad() = torch::ones_like(p);
  ASSERT_TRUE(opt.step().applied);
  check("after a step");
  EXPECT_FALSE(torch::equal(opt.master_of(params[0]), torch::zeros({1}))) << "the step moved p0's master";
  EXPECT_FALSE(opt.master_of(torch::zeros({1}, torch::kBFloat16)).defined()) << "a tensor outside the optimizer";
}

}  // namespace

namespace aha::policy {
namespace {

// A sharded checkpoint (optimizer_shards.h) written by hand for one bf16 parameter "w" of 4
// elements, in two pieces on two ranks, each with float32 masters unless `master` says
// otherwise for the second piece; read by an unsharded masters optimizer.
struct ShardMasters : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("aha_masters_shards_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  void write(const torch::Tensor& second_master) {
    auto moments = [](int64_t offset) { return torch::full({2}, 0.5f + offset); };
    ShardIndex index;
    index.sharding = "zero2";
    index.world_size = 2;
    index.step_count = 7;
    index.parameters = {{"w", 4}};
    index.shards.push_back(write_optimizer_shard(
        dir, 0, {{"w", 0, moments(0), moments(0), 7, torch::tensor({1.00001f, 2.00002f})}}));
    index.shards.push_back(write_optimizer_shard(dir, 1, {{"w", 2, moments(2), moments(2), 7, second_master}}));
    write_shard_index(dir, index);
  }

  // The error of loading into a fresh masters optimizer, which must be left as it was.
  std::string load_error() {
    auto w = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).to(torch::kBFloat16).requires_grad_(true);
    Optimizer opt({{"w", {w}, 0.0, 1.0}}, ::options(true));
    try {
      opt.load_shards(dir, {{"w", w}});
    } catch (const aha::Error& e) {
      EXPECT_EQ(opt.step_count(), 0);
      EXPECT_TRUE(opt.adamw().state().empty());
      EXPECT_TRUE(torch::equal(opt.master_of(w), w.detach().to(torch::kFloat32)));
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir;
};

TEST_F(ShardMasters, PiecesMastersAreReadWholeAndExactly) {
  write(torch::tensor({3.00003f, 4.00004f}));
  auto w = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).to(torch::kBFloat16).requires_grad_(true);
  Optimizer opt({{"w", {w}, 0.0, 1.0}}, ::options(true));
  opt.load_shards(dir, {{"w", w}});
  EXPECT_TRUE(torch::equal(opt.master_of(w), torch::tensor({1.00001f, 2.00002f, 3.00003f, 4.00004f})))
      << opt.master_of(w);
  EXPECT_EQ(opt.step_count(), 7);
}

TEST_F(ShardMasters, BadMastersAreRefusedNamingThePieceAndChangeNothing) {
  write(torch::tensor({3.0f, 4.0f}).to(torch::kBFloat16));  // not float32
  auto dtype = load_error();
  EXPECT_NE(dtype.find("rank-1.safetensors: piece w@2/master must be float32 [2]"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("BF16"), std::string::npos) << dtype;

  write(torch::tensor({3.0f, 4.0f, 5.0f}));  // not the piece's length
  auto shape = load_error();
  EXPECT_NE(shape.find("piece w@2/master must be float32 [2]"), std::string::npos) << shape;

  write(torch::Tensor());  // the second piece without a master, the first with one
  auto mixed = load_error();
  EXPECT_NE(mixed.find("has float32 master weights and"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find("w@2"), std::string::npos) << mixed;
}

}  // namespace
}  // namespace aha::policy
