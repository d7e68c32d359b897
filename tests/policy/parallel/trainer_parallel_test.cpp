// Data-parallel GRPO learner step (policy/learner/grpo_trainer.h) on 2 and 4 Gloo ranks, each
// with its share of a 4-row batch in micro-batches of 1 row, against one process on the whole batch:
// the same gradients (token-mean normalised over the global batch, not per rank), loss, token
// count and weights after the AdamW step.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

class DataParallelTrainer : public ::testing::TestWithParam<int> {};

TEST_P(DataParallelTrainer, RanksMatchOneProcessOnTheWholeBatch) {
  policy::testing::one_thread();
  const int world = GetParam();
  const std::string out = (std::filesystem::temp_directory_path() / ("aha-trainer-step-" + std::to_string(::getpid()))).string();
  auto ranks = run_world("trainer_step", world, {{"AHA_PARALLEL_OUT", out}});
  for (int r = 0; r < world; ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;

  // The reference: one process, the whole batch, the same options.
  auto model = policy::testing::tiny_model();
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  policy::TrainerOptions o;
  o.optimizer.lr = kTrainerStepLr;
  o.micro_batch_size = 1;
  policy::GrpoTrainer trainer(std::move(model), o);
  auto acc = trainer.accumulate_gradients(batch, {});
  std::vector<torch::Tensor> grads;
  for (auto& p : trainer.policy().parameters()) grads.push_back(p.grad().clone());
  for (auto& p : trainer.policy().parameters()) p.mutable_grad() = torch::Tensor();
  auto metrics = trainer.train_step(batch);

  for (int r = 0; r < world; ++r) {
    const std::string base = out + ".rank" + std::to_string(r);
    std::vector<torch::Tensor> rank_grads, rank_weights;
    torch::load(rank_grads, base + ".grads.pt");
    torch::load(rank_weights, base + ".weights.pt");
    auto params = trainer.policy().parameters();
    ASSERT_EQ(rank_grads.size(), grads.size());
    ASSERT_EQ(rank_weights.size(), params.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(rank_grads[i], grads[i], 1e-5, 1e-7))
          << "rank " << r << " gradient " << i << " differs by " << (rank_grads[i] - grads[i]).abs().max().item<float>();
      EXPECT_TRUE(torch::allclose(rank_weights[i], params[i].detach(), 0, 1e-6))
          << "rank " << r << " weight " << i << " differs by "
          << (rank_weights[i] - params[i].detach()).abs().max().item<float>();
    }
    std::ifstream in(base);
    double loss = 0, step_loss = 0, grad_norm = 0;
    int64_t tokens = 0;
    in >> loss >> step_loss >> tokens >> grad_norm;
    EXPECT_NEAR(loss, acc.loss, 1e-6);
    EXPECT_NEAR(step_loss, metrics.loss, 1e-6);
    EXPECT_EQ(tokens, metrics.tokens);
    EXPECT_NEAR(grad_norm, metrics.grad_norm, 1e-5 * metrics.grad_norm);
    for (const char* suffix : {"", ".grads.pt", ".weights.pt"}) std::filesystem::remove(base + suffix);
  }
}

// mini_batch_size counts the world's rows: 2 ranks with 2 rows each and mini_batch_size 2 make
// two optimizer steps, the first from each rank's first row (batch rows 0 and 2), the second
// from rows 1 and 3; one process gets the same steps from the batch in the order 0, 2, 1, 3.
TEST(DataParallelMiniBatches, EachOptimizerStepTakesAShareFromEveryRank) {
  policy::testing::one_thread();
  const std::string out = (std::filesystem::temp_directory_path() / ("aha-trainer-mini-" + std::to_string(::getpid()))).string();
  auto ranks = run_world("trainer_step", 2, {{"AHA_PARALLEL_OUT", out}, {"AHA_TEST_MINI_BATCH", "2"}});
  for (int r = 0; r < 2; ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;
  auto model = policy::testing::tiny_model();
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  auto order = torch::tensor({0, 2, 1, 3}, torch::kInt64);
  auto pick = [&](const torch::Tensor& t) { return t.index_select(0, order); };
  policy::PolicyBatch reordered{pick(batch.input_ids),    pick(batch.attention_mask), pick(batch.completion_mask),
                                pick(batch.old_logprobs), pick(batch.advantages),     pick(batch.rewards), {}};
  policy::TrainerOptions o;
  o.optimizer.lr = kTrainerStepLr;
  o.micro_batch_size = 1;
  o.mini_batch_size = 2;
  policy::GrpoTrainer trainer(std::move(model), o);
  auto metrics = trainer.train_step(reordered);
  ASSERT_EQ(metrics.optimizer_steps, 2);
  auto params = trainer.policy().parameters();
  for (int r = 0; r < 2; ++r) {
    const std::string base = out + ".rank" + std::to_string(r);
    std::vector<torch::Tensor> rank_weights;
    torch::load(rank_weights, base + ".weights.pt");
    ASSERT_EQ(rank_weights.size(), params.size());
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(torch::allclose(rank_weights[i], params[i].detach(), 0, 1e-6))
          << "rank " << r << " weight " << i << " differs by "
          << (rank_weights[i] - params[i].detach()).abs().max().item<float>();
    std::ifstream in(base);
    double loss = 0, step_loss = 0;
    in >> loss >> step_loss;
    EXPECT_NEAR(step_loss, metrics.loss, 1e-6);
    for (const char* suffix : {"", ".grads.pt", ".weights.pt"}) std::filesystem::remove(base + suffix);
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, DataParallelTrainer, ::testing::Values(2, 4));

// Packed micro-batches (micro_batch_tokens) under data parallelism: each rank packs its own rows
// (so ranks may run different numbers of micro-batches); the gradients, loss and step equal one
// process's padded micro-batches on the whole batch.
TEST(DataParallelPackedTrainer, RanksMatchOneProcessPadded) {
  policy::testing::one_thread();
  const std::string out = (std::filesystem::temp_directory_path() / ("aha-trainer-packed-" + std::to_string(::getpid()))).string();
  auto ranks = run_world("trainer_step", 2, {{"AHA_PARALLEL_OUT", out}, {"AHA_TEST_MICRO_TOKENS", "12"}});
  for (int r = 0; r < 2; ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;
  auto model = policy::testing::tiny_model();
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  policy::TrainerOptions o;
  o.optimizer.lr = kTrainerStepLr;
  o.micro_batch_size = 1;
  policy::GrpoTrainer trainer(std::move(model), o);
  auto acc = trainer.accumulate_gradients(batch, {});
  std::vector<torch::Tensor> grads;
  for (auto& p : trainer.policy().parameters()) grads.push_back(p.grad().clone());
  for (auto& p : trainer.policy().parameters()) p.mutable_grad() = torch::Tensor();
  auto metrics = trainer.train_step(batch);
  auto params = trainer.policy().parameters();
  for (int r = 0; r < 2; ++r) {
    const std::string base = out + ".rank" + std::to_string(r);
    std::vector<torch::Tensor> rank_grads, rank_weights;
    torch::load(rank_grads, base + ".grads.pt");
    torch::load(rank_weights, base + ".weights.pt");
    ASSERT_EQ(rank_grads.size(), grads.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_LE((rank_grads[i] - grads[i]).abs().max().item<double>(), 1e-6) << "rank " << r << " gradient " << i;
      EXPECT_LE((rank_weights[i] - params[i].detach()).abs().max().item<double>(), 1e-6) << "rank " << r << " weight " << i;
    }
    std::ifstream in(base);
    double loss = 0, step_loss = 0, grad_norm = 0;
    int64_t tokens = 0;
    in >> loss >> step_loss >> tokens >> grad_norm;
    EXPECT_NEAR(loss, acc.loss, 1e-6);
    EXPECT_NEAR(step_loss, metrics.loss, 1e-6);
    EXPECT_EQ(tokens, metrics.tokens);
    EXPECT_NEAR(grad_norm, metrics.grad_norm, 1e-5 * metrics.grad_norm);
    for (const char* suffix : {"", ".grads.pt", ".weights.pt"}) std::filesystem::remove(base + suffix);
  }
}

// DeepSeek-V3's routing-bias update under data parallelism: the expert loads are summed over the
// ranks before the sign rule, so both ranks' biases move alike and equal one process's on the
// whole batch, bit for bit (the loads are integer counts).
TEST(DataParallelRoutingBias, RanksMoveTheBiasAsOneProcessOnTheWholeBatch) {
  policy::testing::one_thread();
  const std::string out = (std::filesystem::temp_directory_path() / ("aha-routing-bias-" + std::to_string(::getpid()))).string();
  auto ranks = run_world("routing_bias_step", 2, {{"AHA_PARALLEL_OUT", out}});
  for (int r = 0; r < 2; ++r) ASSERT_EQ(ranks[r].exit_code, 0) << "rank " << r << ": " << ranks[r].stderr_text;
  auto model = init_model(ModelConfig::from_file(std::string(AHA_SOURCE_DIR) + "/recipes/models/tiny-deepseek-v3.json"), 5);
  {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    for (auto& [name, b] : model->named_buffers()) b.copy_(torch::randn({b.size(0)}, gen) * 0.01);
  }
  std::vector<torch::Tensor> before;
  for (auto& [name, b] : model->named_buffers()) before.push_back(b.clone());
  auto batch = policy::testing::synthetic_batch(*model, 7, /*B=*/4);
  policy::TrainerOptions o;
  o.optimizer.lr = 1e-3;
  o.micro_batch_size = 1;
  o.routing_bias_update_rate = 0.01;
  policy::GrpoTrainer trainer(std::move(model), o);
  trainer.train_step(batch);
  auto expected = trainer.policy().named_buffers();
  for (int r = 0; r < 2; ++r) {
    const std::string file = out + ".rank" + std::to_string(r) + ".bias.pt";
    std::vector<torch::Tensor> biases;
    torch::load(biases, file);
    ASSERT_EQ(biases.size(), expected.size());
    for (size_t l = 0; l < biases.size(); ++l) {
      EXPECT_FALSE(torch::equal(biases[l], before[l])) << "rank " << r << " layer " << l << ": the bias moved";
      EXPECT_TRUE(torch::equal(biases[l], expected[l].second)) << "rank " << r << " layer " << l;
    }
    std::filesystem::remove(file);
  }
}

}  // namespace
}  // namespace aha::parallel::testing
