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
  bad = options(0.01);
  bad.activation_checkpointing = true;
  EXPECT_THROW(validate(bad), Error);
}

}  // namespace
}  // namespace aha::policy
