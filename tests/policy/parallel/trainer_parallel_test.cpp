// Data-parallel GRPO learner step (policy/learner/grpo_trainer.h) on 2 and 4 Gloo ranks, each
// with its share of a 4-row batch in micro-batches of 1 row, against one process on the whole batch:
// the same gradients (token-mean normalised over the global batch, not per rank), loss, token
// count and weights after the AdamW step.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/policy/learner/trainer_test_util.h"
#include "tests/policy/parallel/world_runner.h"

namespace aha::parallel::testing {
namespace {

// A rank's results of the trainer_step scenario: its gradients of the whole local share, its
// weights after the step, the share's loss, the step's loss, token count and gradient norm.
struct StepRank {
  std::vector<torch::Tensor> grads, weights;
  double loss = 0, step_loss = 0, grad_norm = 0;
  int64_t tokens = 0;
};

std::vector<StepRank> trainer_step(int world, const std::map<std::string, std::string>& env = {}) {
  return run_world_results<StepRank>("trainer_step", world, env, [](const RankFiles& files, StepRank& x) {
    torch::load(x.grads, files.path(".grads.pt"));
    torch::load(x.weights, files.path(".weights.pt"));
    files.numbers() >> x.loss >> x.step_loss >> x.tokens >> x.grad_norm;
  });
}

class DataParallelTrainer : public ::testing::TestWithParam<int> {};

TEST_P(DataParallelTrainer, RanksMatchOneProcessOnTheWholeBatch) {
  policy::testing::one_thread();
  const int world = GetParam();
  const auto ranks = trainer_step(world);
  ASSERT_EQ(ranks.size(), size_t(world));

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
    const auto& [rank_grads, rank_weights, loss, step_loss, grad_norm, tokens] = ranks[r];
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
    EXPECT_NEAR(loss, acc.loss, 1e-6);
    EXPECT_NEAR(step_loss, metrics.loss, 1e-6);
    EXPECT_EQ(tokens, metrics.tokens);
    EXPECT_NEAR(grad_norm, metrics.grad_norm, 1e-5 * metrics.grad_norm);
  }
}

// mini_batch_size counts the world's rows: 2 ranks with 2 rows each and mini_batch_size 2 make
// two optimizer steps, the first from each rank's first row (batch rows 0 and 2), the second
// from rows 1 and 3; one process gets the same steps from the batch in the order 0, 2, 1, 3.
TEST(DataParallelMiniBatches, EachOptimizerStepTakesAShareFromEveryRank) {
  policy::testing::one_thread();
  const auto ranks = trainer_step(2, {{"AHA_TEST_MINI_BATCH", "2"}});
  ASSERT_EQ(ranks.size(), 2u);
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
    const auto& rank_weights = ranks[r].weights;
    ASSERT_EQ(rank_weights.size(), params.size());
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(torch::allclose(rank_weights[i], params[i].detach(), 0, 1e-6))
          << "rank " << r << " weight " << i << " differs by "
          << (rank_weights[i] - params[i].detach()).abs().max().item<float>();
    EXPECT_NEAR(ranks[r].step_loss, metrics.loss, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Worlds, DataParallelTrainer, ::testing::Values(2, 4));

// Packed micro-batches (micro_batch_tokens) under data parallelism: each rank packs its own rows
// (so ranks may run different numbers of micro-batches); the gradients, loss and step equal one
// process's padded micro-batches on the whole batch.
TEST(DataParallelPackedTrainer, RanksMatchOneProcessPadded) {
  policy::testing::one_thread();
  const auto ranks = trainer_step(2, {{"AHA_TEST_MICRO_TOKENS", "12"}});
  ASSERT_EQ(ranks.size(), 2u);
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
    const auto& [rank_grads, rank_weights, loss, step_loss, grad_norm, tokens] = ranks[r];
    ASSERT_EQ(rank_grads.size(), grads.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_LE((rank_grads[i] - grads[i]).abs().max().item<double>(), 1e-6) << "rank " << r << " gradient " << i;
      EXPECT_LE((rank_weights[i] - params[i].detach()).abs().max().item<double>(), 1e-6) << "rank " << r << " weight " << i;
    }
    EXPECT_NEAR(loss, acc.loss, 1e-6);
    EXPECT_NEAR(step_loss, metrics.loss, 1e-6);
    EXPECT_EQ(tokens, metrics.tokens);
    EXPECT_NEAR(grad_norm, metrics.grad_norm, 1e-5 * metrics.grad_norm);
  }
}

// DeepSeek-V3's routing-bias update under data parallelism: the expert loads are summed over the
// ranks before the sign rule, so both ranks' biases move alike and equal one process's on the
// whole batch, bit for bit (the loads are integer counts).
TEST(DataParallelRoutingBias, RanksMoveTheBiasAsOneProcessOnTheWholeBatch) {
  policy::testing::one_thread();
  const auto ranks = run_world_results<std::vector<torch::Tensor>>(
      "routing_bias_step", 2, {}, [](const RankFiles& files, std::vector<torch::Tensor>& biases) {
        torch::load(biases, files.path(".bias.pt"));
      });
  ASSERT_EQ(ranks.size(), 2u);
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
    const auto& biases = ranks[r];
    ASSERT_EQ(biases.size(), expected.size());
    for (size_t l = 0; l < biases.size(); ++l) {
      EXPECT_FALSE(torch::equal(biases[l], before[l])) << "rank " << r << " layer " << l << ": the bias moved";
      EXPECT_TRUE(torch::equal(biases[l], expected[l].second)) << "rank " << r << " layer " << l;
    }
  }
}

}  // namespace
}  // namespace aha::parallel::testing
