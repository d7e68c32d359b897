// The learner on a Qwen3-MoE policy: the auxiliary load-balancing loss it adds (and logs)
// against moe_routing.h's loss computed directly from an unrotated forward (whose value is
// itself checked against transformers in tests/policy/model/qwen3_parity_test.cpp), and the
// option checks.
#include <gtest/gtest.h>

#include "core/error.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/moe_routing.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {

const std::filesystem::path kMoe = std::filesystem::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen3_moe_top2_norm";

TrainerOptions options(double coef) {
  TrainerOptions o;
  o.optimizer.lr = 0.0;  // weights stay put: steps are compared on the same model
  o.router_aux_loss_coef = coef;
  return o;
}

std::vector<torch::Tensor> router_grads(Transformer& m) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : m.named_parameters())
    if (name.find("mlp.gate.weight") != std::string::npos) out.push_back(p.grad().clone());
  return out;
}

TEST(MoeAuxLoss, AddsCoefTimesTheLoadBalancingLossAndLogsIt) {
  testing::one_thread();
  const double coef = 0.5;
  auto model = load_model(kMoe);
  auto batch = testing::synthetic_batch(*model, 7, /*B=*/4);
  // Reference: the aux loss of each half (two micro-batches) from a plain masked forward.
  std::vector<torch::Tensor> direct_grads;
  double direct_aux = 0;
  {
    auto m = load_model(kMoe);
    for (auto& p : m->parameters()) p.requires_grad_(true);
    const auto& c = m->config();
    for (int64_t i = 0; i < 4; i += 2) {
      auto rows = batch.rows(i, 2);
      std::vector<torch::Tensor> logits;
      m->hidden_states(rows.input_ids, rows.attention_mask, {}, {}, &logits);
      auto aux = load_balancing_loss(logits, c.num_experts, c.num_experts_per_tok, rows.attention_mask);
      direct_aux += aux.item<double>() * 0.5;
      (coef * 0.5 * aux).backward();
    }
    direct_grads = router_grads(*m);
  }
  auto with = options(coef);
  with.micro_batch_size = 2;
  GrpoTrainer on(load_model(kMoe), with);
  auto without = with;
  without.router_aux_loss_coef = 0;
  GrpoTrainer off(load_model(kMoe), without);
  on.accumulate_gradients(batch, {});
  off.accumulate_gradients(batch, {});
  auto a = router_grads(on.policy()), b = router_grads(off.policy());
  ASSERT_EQ(a.size(), direct_grads.size());
  for (size_t l = 0; l < a.size(); ++l) {
    EXPECT_GT(direct_grads[l].abs().max().item<double>(), 1e-6);
    EXPECT_LE((a[l] - b[l] - direct_grads[l]).abs().max().item<double>(), 1e-5) << "router " << l;
  }
  // The logged figures, with or without the coefficient.
  for (auto* trainer : {&on, &off}) {
    for (auto& p : trainer->policy().parameters()) p.mutable_grad() = torch::Tensor();
    auto metrics = trainer->train_step(batch);
    ASSERT_TRUE(metrics.has_moe);
    EXPECT_NEAR(metrics.moe_aux_loss, direct_aux, 1e-5);
    EXPECT_GE(metrics.moe_expert_load_max, 1.0);
    bool logged = false;
    for (const auto& [name, v] : metrics.named_values()) logged |= name == "moe/expert_load_max";
    EXPECT_TRUE(logged);
  }
}

TEST(MoeAuxLoss, DensePoliciesLogNoMoeMetricsAndBadOptionsAreErrors) {
  testing::one_thread();
  GrpoTrainer dense(testing::tiny_model(), options(0.01));
  auto metrics = dense.train_step(testing::synthetic_batch(dense.policy(), 3));
  EXPECT_FALSE(metrics.has_moe);
  for (const auto& [name, v] : metrics.named_values()) EXPECT_EQ(name.rfind("moe/", 0), std::string::npos) << name;
  auto bad = options(-1);
  EXPECT_THROW(validate(bad), Error);
}

// Activation checkpointing recomputes each layer in backward; its router logits are outputs of
// the recomputed layer, so the auxiliary loss, its gradient and the moe/ figures are those of
// the plain forward (on the rotated causal path and the masked one).
TEST(MoeAuxLoss, ActivationCheckpointingKeepsTheRouterGradient) {
  testing::one_thread();
  auto o = options(0.5);
  o.micro_batch_size = 2;
  GrpoTrainer plain(load_model(kMoe), o);
  o.activation_checkpointing = true;
  GrpoTrainer checkpointed(load_model(kMoe), o);
  for (bool holes : {false, true}) {
    auto batch = testing::synthetic_batch(plain.policy(), 11, /*B=*/4);
    if (holes) batch.attention_mask[1][3] = 0, batch.attention_mask[1][2] = 1;
    for (auto* t : {&plain, &checkpointed})
      for (auto& p : t->policy().parameters()) p.mutable_grad() = torch::Tensor();
    auto a = plain.accumulate_gradients(batch, {});
    auto b = checkpointed.accumulate_gradients(batch, {});
    EXPECT_NEAR(a.loss, b.loss, 1e-6);
    ASSERT_TRUE(a.moe && b.moe);
    EXPECT_NEAR(a.aux_loss, b.aux_loss, 1e-6);
    EXPECT_GT(a.aux_loss, 0);
    EXPECT_NEAR(a.expert_load_max, b.expert_load_max, 1e-9);
    auto ga = router_grads(plain.policy()), gb = router_grads(checkpointed.policy());
    ASSERT_EQ(ga.size(), gb.size());
    ASSERT_FALSE(ga.empty());
    for (size_t l = 0; l < ga.size(); ++l) {
      EXPECT_GT(ga[l].abs().max().item<double>(), 1e-6);
      EXPECT_LE((ga[l] - gb[l]).abs().max().item<double>(), 1e-6) << "router " << l << (holes ? " (mask)" : "");
    }
    auto all_a = plain.policy().parameters(), all_b = checkpointed.policy().parameters();
    for (size_t i = 0; i < all_a.size(); ++i)
      EXPECT_LE((all_a[i].grad() - all_b[i].grad()).abs().max().item<double>(), 1e-6) << i;
  }
}

}  // namespace
}  // namespace aha::policy
