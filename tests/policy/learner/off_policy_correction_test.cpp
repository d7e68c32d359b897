// Asynchronous GRPO's off-policy correction (policy/learner/off_policy_correction.h): the
// truncated importance weights on hand-worked values, the weighted loss, and the equivalence
// with the on-policy loss when the rollout is the learner's own policy.
#include "policy/learner/off_policy_correction.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "policy/learner/grpo_loss.h"
#include "tests/policy/learner/trainer_test_util.h"

namespace aha::policy {
namespace {

torch::Tensor row(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).unsqueeze(0); }

TEST(TruncatedIs, HandWorkedWeightsAndStats) {
  // pi_old / pi_behaviour per token: 0.5/0.25 = 2, 0.3/0.3 = 1, 0.2/0.8 = 0.25, and a padding
  // token whose ratio (10) must not count.
  auto proximal = row({std::log(0.5), std::log(0.3), std::log(0.2), std::log(0.5)});
  auto behaviour = row({std::log(0.25), std::log(0.3), std::log(0.8), std::log(0.05)});
  auto mask = torch::tensor({{1, 1, 1, 0}});
  auto w = truncated_is_weights(proximal, behaviour, mask, 1.5);
  ASSERT_EQ(w.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(w[0][0].item<double>(), 1.5, 1e-6);  // 2 truncated at the cap
  EXPECT_NEAR(w[0][1].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(w[0][2].item<double>(), 0.25, 1e-6);  // never raised: only the top is cut
  EXPECT_EQ(w[0][3].item<double>(), 1.0);           // not a completion token
  auto s = truncated_is_stats(proximal, behaviour, mask, 1.5);
  EXPECT_EQ(s.tokens, 3);
  EXPECT_NEAR(s.weight_mean, (1.5 + 1.0 + 0.25) / 3, 1e-12);
  EXPECT_NEAR(s.weight_max, 1.5, 1e-12);
  EXPECT_NEAR(s.truncated_frac, 1.0 / 3, 1e-12);
  // A cap above every ratio leaves them as they are.
  auto loose = truncated_is_stats(proximal, behaviour, mask, 4.0);
  EXPECT_NEAR(loose.weight_max, 2.0, 1e-12);
  EXPECT_EQ(loose.truncated_frac, 0.0);
}

TEST(TruncatedIs, ExtremeLogRatiosStayFinite) {
  // 1000 nats apart: clamped to 20 before exp, then cut at the cap; the other way, e^-20.
  auto w = truncated_is_weights(row({0.0, -1000.0}), row({-1000.0, 0.0}), torch::tensor({{1, 1}}), 2.0);
  EXPECT_EQ(w[0][0].item<double>(), 2.0);
  EXPECT_NEAR(w[0][1].item<double>(), std::exp(-20.0), 1e-12);
}

TEST(TruncatedIs, RefusesBadCapsAndShapes) {
  auto a = row({0.0, 0.0});
  auto mask = torch::tensor({{1, 1}});
  for (double cap : {0.0, -1.0, double(NAN), double(INFINITY)}) {
    try {
      truncated_is_weights(a, a, mask, cap);
      ADD_FAILURE() << "cap " << cap << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tis_cap"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(truncated_is_weights(a, row({0.0}), mask, 2.0), Error);
  EXPECT_THROW(truncated_is_weights(a, a, torch::tensor({{1}}), 2.0), Error);
}

TEST(TruncatedIs, WeightsScaleTheTokenLoss) {
  // The one-sequence case of grpo_loss_test: ratios 1.25 (clipped at 1.2, A = 1) and 1.0, now
  // with weights 0.5 and 2: loss = (0.5 * -1.2 + 2 * -1.0) / 2 = -1.3; only token 1 has a
  // gradient: -A r w / 2 = -1.
  GrpoLossInputs in;
  in.logprobs = row({std::log(0.5), std::log(0.25), -3.0}).requires_grad_(true);
  in.old_logprobs = row({std::log(0.4), std::log(0.25), -1.0});
  in.advantages = torch::tensor({1.0}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1, 0}});
  in.is_weights = row({0.5, 2.0, 7.0});
  auto r = grpo_loss(in, {});
  EXPECT_NEAR(r.loss.item<double>(), -1.3, 1e-12);
  r.loss.backward();
  EXPECT_TRUE(torch::allclose(in.logprobs.grad(), row({0.0, -1.0, 0.0})));
  in.is_weights = row({1.0});
  EXPECT_THROW(grpo_loss(in, {}), Error);  // names is_weights' shape
}

TEST(TruncatedIs, UnitWeightsGiveTheOnPolicyLossBitForBit) {
  testing::one_thread();
  auto model = testing::tiny_model();
  auto b = testing::synthetic_batch(*model, 7);
  GrpoLossInputs in;
  in.logprobs = (b.old_logprobs + 0.1 * torch::randn(b.old_logprobs.sizes())).requires_grad_(true);
  in.old_logprobs = b.old_logprobs;
  in.advantages = b.advantages;
  in.mask = b.completion_mask;
  auto plain = grpo_loss(in, {.clip_eps_high = 0.28});
  plain.loss.backward();
  auto grad = in.logprobs.grad().clone();
  in.logprobs.grad().zero_();
  in.is_weights = torch::ones_like(b.old_logprobs);
  auto weighted = grpo_loss(in, {.clip_eps_high = 0.28});
  weighted.loss.backward();
  EXPECT_TRUE(torch::equal(plain.loss, weighted.loss));
  EXPECT_TRUE(torch::equal(grad, in.logprobs.grad()));
}

// A rollout of the learner's own current policy (staleness 0, behaviour = proximal): every
// weight is exactly 1 and the decoupled step is the on-policy step, to the bit.
TEST(DecoupledBatch, FreshRolloutTrainsExactlyAsOnPolicy) {
  testing::one_thread();
  TrainerOptions o;
  o.optimizer.lr = 1e-2;
  o.mini_batch_size = 2;
  o.inner_epochs = 2;
  GrpoTrainer plain(testing::tiny_model(), o), decoupled(testing::tiny_model(), o);
  auto b = testing::synthetic_batch(plain.policy(), 11);
  b.old_logprobs = plain.policy_logprobs(b).to(torch::kFloat32);
  TruncatedIsStats s;
  auto d = decoupled_batch(decoupled, b, 2.0, &s);
  EXPECT_TRUE(torch::equal(d.old_logprobs, b.old_logprobs));
  EXPECT_TRUE(torch::equal(d.is_weights, torch::ones_like(d.is_weights)));
  EXPECT_EQ(s.weight_mean, 1.0);
  EXPECT_EQ(s.truncated_frac, 0.0);
  plain.train_step(b);
  decoupled.train_step(d);
  auto pa = plain.policy().named_parameters(), pb = decoupled.policy().named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
}

// A stale rollout: behaviour log-probs below the current policy's by log 3 on one token and
// above by log 2 on another give weights min(3, 2) = 2 and 1/2 there, 1 elsewhere; the
// trainer's old log-probs become the current policy's.
TEST(DecoupledBatch, StaleRolloutGetsTruncatedWeights) {
  testing::one_thread();
  GrpoTrainer trainer(testing::tiny_model(), TrainerOptions{});
  auto b = testing::synthetic_batch(trainer.policy(), 12);
  auto current = trainer.policy_logprobs(b).to(torch::kFloat32);
  // Row 0's first completion token and row 1's first completion token.
  auto first = [&](int64_t r) { return b.completion_mask[r].nonzero()[0][0].item<int64_t>(); };
  const int64_t t0 = first(0), t1 = first(1);
  b.old_logprobs = current.clone();
  b.old_logprobs[0][t0] -= std::log(3.0);
  b.old_logprobs[1][t1] += std::log(2.0);
  auto d = decoupled_batch(trainer, b, 2.0);
  EXPECT_TRUE(torch::equal(d.old_logprobs, current));
  auto expected = torch::ones_like(current);
  expected[0][t0] = 2.0;
  expected[1][t1] = 0.5;
  EXPECT_TRUE(torch::allclose(d.is_weights, expected, 1e-5, 1e-6)) << d.is_weights;
}

}  // namespace
}  // namespace aha::policy
