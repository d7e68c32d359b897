// GrpoTrainer: gradients against autograd of a naively written loss (full log_softmax),
// gradient accumulation against one big micro-batch, optimizer-step bookkeeping, the
// non-finite skip, reference refresh and bad input.
#include "policy/learner/grpo_trainer.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {

using testing::synthetic_batch;
using testing::tiny_model;

TrainerOptions base_options() {
  TrainerOptions o;
  o.loss.clip_eps_low = 0.2;
  o.loss.clip_eps_high = 0.28;
  o.optimizer.lr = 1e-3;
  return o;
}

// Log-probs of input_ids[:, 1:] from the full [B, T, V] logits, as one would write it first.
torch::Tensor naive_logprobs(const Transformer& m, const PolicyBatch& b, double temperature,
                             torch::Tensor* entropy = nullptr) {
  const int64_t T = b.input_ids.size(1);
  auto logits = m.logits(m.hidden_states(b.input_ids, b.attention_mask)).to(torch::kFloat32) / temperature;
  auto logp = torch::log_softmax(logits.narrow(1, 0, T - 1), -1);
  if (entropy) *entropy = -(logp.exp() * logp).sum(-1);
  return logp.gather(-1, b.input_ids.narrow(1, 1, T - 1).unsqueeze(-1)).squeeze(-1);
}

std::vector<torch::Tensor> grads_of(Transformer& m) {
  std::vector<torch::Tensor> g;
  for (auto& p : m.parameters()) g.push_back(p.grad().clone());
  return g;
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = (a[i] - b[i]).abs().max().item<double>();
    EXPECT_LE(diff, tol) << "parameter " << i;
  }
}

// holes: one row gets a padding token inside its real tokens, which takes the explicit-mask
// path instead of the rotated causal one.
void check_gradient_against_naive_loss(bool holes) {
  testing::one_thread();
  auto o = base_options();
  o.loss.beta = 0.05;
  o.loss.entropy_coef = 0.01;
  o.temperature = 0.7;
  GrpoTrainer trainer(tiny_model(), o);
  {  // a reference that differs from the policy, so that the KL term has a gradient
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    for (auto& p : trainer.reference()->parameters()) p.add_(0.02 * torch::randn(p.sizes(), gen));
  }
  auto batch = synthetic_batch(trainer.policy(), 11, 4, 5, 6, o.temperature);
  if (holes) {
    batch.attention_mask[2].fill_(1);
    batch.attention_mask[2][3] = 0;  // a hole inside the prompt
  }
  auto ref = trainer.reference_logprobs(batch);
  auto acc = trainer.accumulate_gradients(batch, ref);
  auto trainer_grads = grads_of(trainer.policy());

  // The same loss, written out: token mean of the clipped surrogate + beta k3 - c H.
  auto& m = trainer.policy();
  torch::Tensor entropy, ref_naive;
  auto lp = naive_logprobs(m, batch, o.temperature, &entropy);
  {
    torch::NoGradGuard no_grad;
    ref_naive = naive_logprobs(*trainer.reference(), batch, o.temperature);
  }
  // Positions whose target is padding are don't-care values (the loss masks them).
  auto real = batch.completion_mask.to(torch::kBool);
  EXPECT_TRUE(torch::allclose(ref.masked_select(real), ref_naive.masked_select(real), 1e-5, 1e-5));
  auto mask = batch.completion_mask;
  auto A = batch.advantages.unsqueeze(1);
  auto ratio = torch::exp(lp - batch.old_logprobs);
  auto surrogate = torch::max(-A * ratio, -A * torch::clamp(ratio, 0.8, 1.28));
  auto d = ref_naive - lp;
  auto k3 = torch::exp(d) - d - 1;
  auto mean = [&](const torch::Tensor& x) { return (x * mask).sum() / mask.sum(); };
  auto loss = mean(surrogate) + o.loss.beta * mean(k3) - o.loss.entropy_coef * mean(entropy);
  EXPECT_NEAR(acc.loss, loss.item<double>(), 1e-5);
  auto params = m.parameters();
  auto naive_grads = torch::autograd::grad({loss}, params);
  expect_close(trainer_grads, naive_grads, 1e-5);
}

TEST(GrpoTrainer, GradientMatchesNaiveLossWithReferenceAndEntropy) {
  check_gradient_against_naive_loss(false);
}
TEST(GrpoTrainer, GradientMatchesNaiveLossWithMaskHoles) { check_gradient_against_naive_loss(true); }

TEST(GrpoTrainer, MicroBatchAccumulationEqualsOneBatch) {
  testing::one_thread();
  for (auto aggregation : {LossAggregation::token_mean, LossAggregation::seq_mean_token_mean}) {
    auto o = base_options();
    o.loss.aggregation = aggregation;
    o.loss.beta = 0.1;
    GrpoTrainer whole(tiny_model(), o);
    o.micro_batch_size = 1;
    GrpoTrainer split(tiny_model(), o);
    auto batch = synthetic_batch(whole.policy(), 3, 5);
    // Reference log-probs from a different model, so the KL term is not zero.
    auto ref = synthetic_batch(whole.policy(), 4, 5).old_logprobs;
    auto a = whole.accumulate_gradients(batch, ref);
    auto b = split.accumulate_gradients(batch, ref);
    EXPECT_NEAR(a.loss, b.loss, 1e-6);
    EXPECT_EQ(a.tokens, b.tokens);
    expect_close(grads_of(whole.policy()), grads_of(split.policy()), 1e-5);
  }
}

TEST(GrpoTrainer, ActivationCheckpointingKeepsGradients) {
  testing::one_thread();
  auto o = base_options();
  o.loss.entropy_coef = 0.01;
  o.micro_batch_size = 2;
  GrpoTrainer plain(tiny_model(), o);
  o.activation_checkpointing = true;
  GrpoTrainer checkpointed(tiny_model(), o);
  EXPECT_TRUE(checkpointed.policy().activation_checkpointing());
  for (bool holes : {false, true}) {  // the rotated causal path and the explicit-mask path
    auto batch = synthetic_batch(plain.policy(), 8, 4);
    if (holes) batch.attention_mask[1][3] = 0, batch.attention_mask[1][2] = 1;
    for (auto* t : {&plain, &checkpointed})
      for (auto& p : t->policy().parameters()) p.mutable_grad() = torch::Tensor();
    auto a = plain.accumulate_gradients(batch, {});
    auto b = checkpointed.accumulate_gradients(batch, {});
    EXPECT_DOUBLE_EQ(a.loss, b.loss);
    for (auto& p : checkpointed.policy().parameters()) ASSERT_TRUE(p.grad().defined());
    expect_close(grads_of(plain.policy()), grads_of(checkpointed.policy()), 1e-6);
    EXPECT_GT(checkpointed.policy().parameters()[1].grad().abs().sum().item<double>(), 0.0);
  }
}

TEST(GrpoTrainer, StepCountsEpochsAndMiniBatches) {
  testing::one_thread();
  auto o = base_options();
  o.mini_batch_size = 3;
  o.inner_epochs = 2;
  GrpoTrainer trainer(tiny_model(), o);
  auto before = trainer.policy().parameters()[0].clone();
  auto batch = synthetic_batch(trainer.policy(), 1, 4);
  auto m = trainer.train_step(batch);
  EXPECT_EQ(m.optimizer_steps, 4);  // 2 epochs x ceil(4 / 3)
  EXPECT_EQ(trainer.optimizer().step_count(), 4);
  EXPECT_EQ(m.skipped_steps, 0);
  EXPECT_EQ(m.tokens, 2 * batch.completion_mask.sum().item<int64_t>());
  EXPECT_FALSE(torch::equal(before, trainer.policy().parameters()[0]));
  EXPECT_GT(m.grad_norm, 0);
  EXPECT_DOUBLE_EQ(m.lr, 1e-3);
  EXPECT_NEAR(m.reward_mean, batch.rewards.mean().item<double>(), 1e-6);
  EXPECT_GE(m.clip_frac_low + m.clip_frac_high, 0.0);
  EXPECT_GT(m.entropy, 0.0);
  EXPECT_GE(m.ratio_max, m.ratio_mean);
  EXPECT_LE(m.ratio_min, m.ratio_mean);
  EXPECT_EQ(trainer.steps_done(), 1);
}

TEST(GrpoTrainer, NonFiniteAdvantageSkipsTheStepAndKeepsWeights) {
  testing::one_thread();
  GrpoTrainer trainer(tiny_model(), base_options());
  auto batch = synthetic_batch(trainer.policy(), 2);
  batch.advantages[1] = std::numeric_limits<float>::quiet_NaN();
  std::vector<torch::Tensor> before;
  for (auto& p : trainer.policy().parameters()) before.push_back(p.detach().clone());
  auto m = trainer.train_step(batch);
  EXPECT_EQ(m.skipped_steps, 1);
  auto after = trainer.policy().parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
  for (auto& p : after) EXPECT_FALSE(p.grad().defined());
}

TEST(GrpoTrainer, ReferenceRefreshCopiesThePolicyEveryKSteps) {
  testing::one_thread();
  auto o = base_options();
  o.loss.beta = 0.1;
  o.ref_refresh_steps = 2;
  GrpoTrainer trainer(tiny_model(), o);
  auto same = [&] {
    auto p = trainer.policy().parameters(), r = trainer.reference()->parameters();
    for (size_t i = 0; i < p.size(); ++i)
      if (!torch::equal(p[i], r[i])) return false;
    return true;
  };
  EXPECT_TRUE(same());
  trainer.train_step(synthetic_batch(trainer.policy(), 1));
  EXPECT_FALSE(same());
  auto m = trainer.train_step(synthetic_batch(trainer.policy(), 2));
  EXPECT_TRUE(same());
  EXPECT_TRUE(m.has_reference);
  EXPECT_GT(m.approx_kl, 0.0);  // computed before the refresh, against the old reference

  GrpoTrainer no_ref(tiny_model(), base_options());
  EXPECT_EQ(no_ref.reference(), nullptr);
  EXPECT_FALSE(no_ref.reference_logprobs(synthetic_batch(no_ref.policy(), 1)).defined());
}

TEST(GrpoTrainer, BadOptionsAndBatchesNameTheFault) {
  testing::one_thread();
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error, expected one mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto o = base_options();
  o.inner_epochs = 0;
  expect_error([&] { GrpoTrainer t(tiny_model(), o); }, "inner_epochs");
  o = base_options();
  o.ref_refresh_steps = 3;
  expect_error([&] { GrpoTrainer t(tiny_model(), o); }, "ref_refresh_steps");
  o = base_options();
  o.autocast_bf16 = true;
  expect_error([&] { GrpoTrainer t(tiny_model(), o); }, "autocast_bf16");

  GrpoTrainer trainer(tiny_model(), base_options());
  auto batch = synthetic_batch(trainer.policy(), 1);
  auto bad = batch;
  bad.completion_mask = bad.completion_mask.narrow(1, 0, 3);
  expect_error([&] { trainer.train_step(bad); }, "completion_mask");
  bad = batch;
  bad.advantages = torch::zeros({2});
  expect_error([&] { trainer.train_step(bad); }, "advantages");
  bad = batch;
  bad.input_ids = bad.input_ids.to(torch::kInt32);
  expect_error([&] { trainer.train_step(bad); }, "int64");
  // The policy's log-probs read the tokens only: bad masks are named, old_logprobs and
  // advantages may be absent (they are what the log-probs become).
  bad = batch;
  bad.completion_mask = bad.completion_mask.narrow(1, 0, 3);
  expect_error([&] { trainer.policy_logprobs(bad); }, "completion_mask");
  auto tokens_only = batch;
  tokens_only.old_logprobs = tokens_only.advantages = torch::Tensor();
  EXPECT_TRUE(torch::equal(trainer.policy_logprobs(tokens_only), trainer.policy_logprobs(batch)));
  o = base_options();
  o.micro_batch_tokens = 16;  // packed micro-batches read the tokens only too
  GrpoTrainer packed(tiny_model(), o);
  EXPECT_TRUE(torch::equal(packed.policy_logprobs(tokens_only), packed.policy_logprobs(batch)));
}

// CUDA only (skipped elsewhere): bf16 autocast over float32 master weights gives gradients close
// to the float32 ones, float32 gradients and a finite, applied step.
TEST(GrpoTrainer, CudaAutocastGradientsTrackFloat32) {
  testing::one_thread();
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto o = base_options();
  GrpoTrainer fp32(load_model(testing::kTinyModel, {torch::kCUDA, std::nullopt}), o);
  o.autocast_bf16 = true;
  GrpoTrainer mixed(load_model(testing::kTinyModel, {torch::kCUDA, std::nullopt}), o);
  auto batch = synthetic_batch(*load_model(testing::kTinyModel), 9, 4);
  fp32.accumulate_gradients(batch, {});
  mixed.accumulate_gradients(batch, {});
  auto a = grads_of(fp32.policy()), b = grads_of(mixed.policy());
  auto flat = [](const std::vector<torch::Tensor>& g) {
    std::vector<torch::Tensor> f;
    for (auto& t : g) f.push_back(t.to(torch::kFloat32).flatten());
    return torch::cat(f);
  };
  auto fa = flat(a), fb = flat(b);
  for (auto& g : b) EXPECT_EQ(g.scalar_type(), torch::kFloat32);
  double cosine = (fa * fb).sum().item<double>() / (fa.norm().item<double>() * fb.norm().item<double>());
  EXPECT_GT(cosine, 0.99);
  // Activation checkpointing recomputes each layer under the forward's autocast state.
  o.activation_checkpointing = true;
  GrpoTrainer recomputed(load_model(testing::kTinyModel, {torch::kCUDA, std::nullopt}), o);
  recomputed.accumulate_gradients(batch, {});
  auto fc = flat(grads_of(recomputed.policy()));
  EXPECT_LT((fc - fb).abs().max().item<double>(), 1e-3 * fb.abs().max().item<double>());
  for (auto& p : mixed.policy().parameters()) p.mutable_grad() = torch::Tensor();
  auto m = mixed.train_step(batch);
  EXPECT_EQ(m.skipped_steps, 0);
  EXPECT_TRUE(std::isfinite(m.loss));
  for (auto& p : mixed.policy().parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

}  // namespace
}  // namespace aha::policy
