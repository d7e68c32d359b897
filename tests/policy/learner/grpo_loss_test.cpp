// Hand-worked cases, invariants and bad input for policy/grpo_loss and policy/kl. The golden
// comparison against the PyTorch reference is in grpo_golden_test.cpp.
#include "policy/learner/grpo_loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace {

using aha::policy::GrpoLossInputs;
using aha::policy::GrpoLossOptions;
using aha::policy::KlEstimator;
using aha::policy::LossAggregation;

torch::Tensor t2(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto& row : rows) r.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(r);
}

double metric(const aha::policy::GrpoLossResult& r, const std::string& name) {
  for (auto& [n, v] : r.metrics.named_values())
    if (n == name) return v;
  ADD_FAILURE() << "no metric " << name;
  return NAN;
}

// One sequence, tokens 0 and 1 in the completion, token 2 padding. Ratios 1.25 and 1.0.
GrpoLossInputs one_sequence(double advantage) {
  GrpoLossInputs in;
  in.logprobs = t2({{std::log(0.5), std::log(0.25), -3.0}}).requires_grad_(true);
  in.old_logprobs = t2({{std::log(0.4), std::log(0.25), -1.0}});
  in.advantages = torch::tensor({advantage}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1, 0}});
  return in;
}

TEST(GrpoLoss, HandWorkedClipHigh) {
  auto in = one_sequence(1.0);
  auto r = aha::policy::grpo_loss(in, {});
  // token 0: max(-1.25, -1.2) = -1.2 (upper clip active, no gradient); token 1: -1.0.
  EXPECT_NEAR(r.loss.item<double>(), (-1.2 - 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r, "train/clip_frac_high"), 0.5);
  EXPECT_DOUBLE_EQ(metric(r, "train/clip_frac_low"), 0.0);
  EXPECT_NEAR(metric(r, "train/ratio_max"), 1.25, 1e-12);
  EXPECT_NEAR(metric(r, "train/ratio_min"), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r, "train/tokens"), 2.0);
  r.loss.backward();
  // d(-A r)/d logp = -A r, over 2 tokens.
  EXPECT_TRUE(torch::allclose(in.logprobs.grad(), t2({{0.0, -0.5, 0.0}})));
  // DAPO's clip-higher: eps_high = 0.28 lets token 0 through.
  auto in2 = one_sequence(1.0);
  auto r2 = aha::policy::grpo_loss(in2, {.clip_eps_high = 0.28});
  EXPECT_NEAR(r2.loss.item<double>(), (-1.25 - 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r2, "train/clip_frac_high"), 0.0);
}

TEST(GrpoLoss, ClipRatioTenAsInTheR1ReportLeavesRatiosUnclipped) {
  // eps = 10: bounds [-9, 11]. A negative advantage with ratio 0.25/0.4 = 0.625 would be
  // clipped at 0.8 by eps = 0.2; here it is not.
  GrpoLossInputs in;
  in.logprobs = t2({{std::log(0.25), std::log(0.5)}}).requires_grad_(true);
  in.old_logprobs = t2({{std::log(0.4), std::log(0.5)}});
  in.advantages = torch::tensor({-1.0}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1}});
  auto r = aha::policy::grpo_loss(in, {.clip_eps_low = 10, .clip_eps_high = 10});
  EXPECT_NEAR(r.loss.item<double>(), (0.625 + 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r, "train/clip_frac_low"), 0.0);
  auto clipped = aha::policy::grpo_loss(in, {});
  EXPECT_NEAR(clipped.loss.item<double>(), (0.8 + 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(clipped, "train/clip_frac_low"), 0.5);
}

TEST(GrpoLoss, HandWorkedNegativeAdvantageAndDualClip) {
  auto in = one_sequence(-1.0);
  auto r = aha::policy::grpo_loss(in, {});
  // A < 0: token 0: max(1.25, 1.2) = 1.25, unclipped (the PPO clip only bounds improvement).
  EXPECT_NEAR(r.loss.item<double>(), (1.25 + 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r, "train/clip_frac_low"), 0.0);
  r.loss.backward();
  EXPECT_TRUE(torch::allclose(in.logprobs.grad(), t2({{0.625, 0.5, 0.0}})));
  // Dual-clip c = 1.1 caps token 0 at -A c = 1.1, with no gradient.
  auto in2 = one_sequence(-1.0);
  GrpoLossOptions dual;
  dual.dual_clip_c = 1.1;
  auto r2 = aha::policy::grpo_loss(in2, dual);
  EXPECT_NEAR(r2.loss.item<double>(), (1.1 + 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r2, "train/dual_clip_frac"), 0.5);
  r2.loss.backward();
  EXPECT_TRUE(torch::allclose(in2.logprobs.grad(), t2({{0.0, 0.5, 0.0}})));
  // The lower clip: ratio 0.5 with A < 0 is held at 1 - eps_low = 0.8.
  auto in3 = one_sequence(-1.0);
  in3.old_logprobs = t2({{std::log(1.0), std::log(0.25), 0.0}});
  auto r3 = aha::policy::grpo_loss(in3, {});
  EXPECT_NEAR(r3.loss.item<double>(), (0.8 + 1.0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(metric(r3, "train/clip_frac_low"), 0.5);
}

TEST(GrpoLoss, HandWorkedKlEstimators) {
  auto logp = torch::tensor({std::log(0.5)}, torch::kFloat64);
  auto ref = torch::tensor({std::log(0.25)}, torch::kFloat64);
  EXPECT_NEAR(aha::policy::per_token_kl(logp, ref, KlEstimator::k1).item<double>(), std::log(2.0),
              1e-12);
  EXPECT_NEAR(aha::policy::per_token_kl(logp, ref, KlEstimator::k2).item<double>(),
              0.5 * std::log(2.0) * std::log(2.0), 1e-12);
  // k3 = q/p - log(q/p) - 1 with q/p = 0.5.
  EXPECT_NEAR(aha::policy::per_token_kl(logp, ref, KlEstimator::k3).item<double>(),
              0.5 - std::log(0.5) - 1.0, 1e-12);
  // Far from the reference k3 is capped at 10 instead of overflowing.
  auto far = torch::tensor({-200.0}, torch::kFloat64);
  EXPECT_DOUBLE_EQ(aha::policy::per_token_kl(far, ref, KlEstimator::k3).item<double>(), 10.0);
  EXPECT_THROW(aha::policy::parse_kl_estimator("kl"), aha::Error);
}

TEST(GrpoLoss, SequenceKlSumsCompletionTokens) {
  auto logp = t2({{std::log(0.5), std::log(0.5), -1.0}, {std::log(0.25), -2.0, -3.0}});
  auto ref = t2({{std::log(0.25), std::log(0.5), 5.0}, {std::log(0.5), -2.0, 9.0}});
  auto mask = torch::tensor({{1, 1, 0}, {1, 1, 0}});
  auto kl = aha::policy::sequence_kl(logp.requires_grad_(true), ref, mask, KlEstimator::k1);
  EXPECT_FALSE(kl.requires_grad());
  EXPECT_NEAR(kl[0].item<double>(), std::log(2.0), 1e-12);
  EXPECT_NEAR(kl[1].item<double>(), -std::log(2.0), 1e-12);
  EXPECT_THROW(aha::policy::sequence_kl(logp, ref, torch::ones({2}), KlEstimator::k3), aha::Error);
}

// A micro-batch of padding only (no completion token) adds nothing: zero loss and gradient.
TEST(GrpoLoss, NoCompletionTokensGiveZeroLossAndGradient) {
  for (auto agg : {LossAggregation::token_mean, LossAggregation::seq_mean_token_mean,
                   LossAggregation::seq_sum_const_len}) {
    for (bool gspo : {false, true}) {
      auto in = one_sequence(1.0);
      in.mask = torch::zeros({1, 3});
      in.ref_logprobs = in.old_logprobs;
      auto r = aha::policy::grpo_loss(
          in, {.beta = 0.1, .aggregation = agg, .const_length = 4, .sequence_ratio = gspo});
      EXPECT_EQ(r.loss.item<double>(), 0.0);
      r.loss.backward();
      EXPECT_TRUE(torch::equal(in.logprobs.grad(), torch::zeros({1, 3}, torch::kFloat64)));
      EXPECT_EQ(metric(r, "train/tokens"), 0.0);
      EXPECT_EQ(metric(r, "train/clip_frac_high"), 0.0);
    }
  }
}

TEST(GrpoLoss, HandWorkedGspoSequenceRatio) {
  GrpoLossInputs in;
  in.logprobs = t2({{-1.0, -2.0, -5.0}}).requires_grad_(true);
  in.old_logprobs = t2({{-1.2, -1.9, -9.0}});  // log-ratios 0.2, -0.1; the third is padding
  in.advantages = torch::tensor({1.0}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1, 0}});
  GrpoLossOptions gspo;
  gspo.sequence_ratio = true;
  gspo.aggregation = LossAggregation::seq_mean_token_mean;
  auto r = aha::policy::grpo_loss(in, gspo);
  double s = std::exp(0.05);  // exp(mean log-ratio)
  EXPECT_NEAR(r.loss.item<double>(), -s, 1e-12);
  EXPECT_NEAR(metric(r, "train/ratio_mean"), s, 1e-12);
  r.loss.backward();
  // d(-s)/d logp_t = -s / |y| for each completion token.
  EXPECT_TRUE(torch::allclose(in.logprobs.grad(), t2({{-s / 2, -s / 2, 0.0}})));
}

TEST(GrpoLoss, AggregationsHandWorked) {
  // Per-token losses -A r with r = 1: sequence 0 has 3 tokens of loss -1, sequence 1 has
  // 1 token of loss -2 (A = 1 and 2).
  GrpoLossInputs in;
  in.logprobs = torch::full({2, 4}, -1.0, torch::kFloat64).requires_grad_(true);
  in.old_logprobs = torch::full({2, 4}, -1.0, torch::kFloat64);
  in.advantages = torch::tensor({1.0, 2.0}, torch::kFloat64);
  in.mask = torch::tensor({{1, 1, 1, 0}, {1, 0, 0, 0}});
  auto loss = [&](GrpoLossOptions o) { return aha::policy::grpo_loss(in, o).loss.item<double>(); };
  EXPECT_NEAR(loss({.aggregation = LossAggregation::token_mean}), (-3.0 - 2.0) / 4, 1e-12);
  EXPECT_NEAR(loss({.aggregation = LossAggregation::seq_mean_token_mean}), (-1.0 - 2.0) / 2, 1e-12);
  EXPECT_NEAR(loss({.aggregation = LossAggregation::seq_sum_const_len, .const_length = 5}),
              (-3.0 / 5 - 2.0 / 5) / 2, 1e-12);
}

// A mini-batch split into micro-batches, each told the mini-batch's totals, gives the same
// loss (summed) and the same gradient as the whole mini-batch at once.
TEST(GrpoLoss, MicroBatchesAddUpToTheMiniBatch) {
  torch::manual_seed(7);
  const int64_t B = 6, T = 9;
  auto logp = (-torch::rand({B, T}, torch::kFloat64) * 3).requires_grad_(true);
  auto old = logp.detach() + 0.3 * torch::randn({B, T}, torch::kFloat64);
  auto ref = logp.detach() + 0.3 * torch::randn({B, T}, torch::kFloat64);
  auto adv = torch::randn({B}, torch::kFloat64);
  auto lengths = torch::tensor({9, 4, 1, 7, 3, 6});
  auto mask = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
  for (auto agg : {LossAggregation::token_mean, LossAggregation::seq_mean_token_mean,
                   LossAggregation::seq_sum_const_len}) {
    for (bool gspo : {false, true}) {
      GrpoLossOptions o{.beta = 0.1, .aggregation = agg, .const_length = 9, .sequence_ratio = gspo};
      o.dual_clip_c = 2.0;
      logp.mutable_grad() = torch::Tensor();
      auto whole = aha::policy::grpo_loss({logp, old, ref, adv, mask}, o).loss;
      whole.backward();
      auto whole_grad = logp.grad().clone();
      logp.mutable_grad() = torch::Tensor();
      double sum = 0;
      int64_t total_tokens = mask.sum().item<int64_t>();
      for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, 2}, {2, 6}}) {
        auto s = torch::indexing::Slice(lo, hi);
        GrpoLossInputs part{logp.index({s}), old.index({s}),
                            ref.index({s}),  adv.index({s}),
                            mask.index({s}), {},
                            total_tokens,    B};
        auto l = aha::policy::grpo_loss(part, o).loss;
        l.backward();
        sum += l.item<double>();
      }
      EXPECT_NEAR(sum, whole.item<double>(), 1e-12) << int(agg) << gspo;
      EXPECT_TRUE(torch::allclose(logp.grad(), whole_grad, 0, 1e-12)) << int(agg) << gspo;
    }
  }
}

TEST(GrpoLoss, LowPrecisionInputsComputeInFloat32) {
  auto in = one_sequence(1.0);
  auto source = in.logprobs;
  in.logprobs = source.to(torch::kBFloat16);
  auto r = aha::policy::grpo_loss(in, {});
  EXPECT_EQ(r.loss.scalar_type(), torch::kFloat32);
  r.loss.backward();
  EXPECT_TRUE(source.grad().defined());
}

TEST(GrpoLoss, BadInputIsNamed) {
  auto message = [](GrpoLossInputs in, GrpoLossOptions o) {
    try {
      aha::policy::grpo_loss(in, o);
    } catch (const aha::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto in = one_sequence(1.0);
  auto bad = in;
  bad.old_logprobs = torch::zeros({1, 2}, torch::kFloat64);
  EXPECT_NE(message(bad, {}).find("old_logprobs shape"), std::string::npos);
  bad = in;
  bad.mask = torch::ones({2, 3});
  EXPECT_NE(message(bad, {}).find("mask"), std::string::npos);
  bad = in;
  bad.advantages = torch::zeros({2}, torch::kFloat64);
  EXPECT_NE(message(bad, {}).find("advantages"), std::string::npos);
  EXPECT_NE(message(in, {.beta = 0.1}).find("ref_logprobs"), std::string::npos);
  EXPECT_NE(message(in, {.entropy_coef = 0.01}).find("entropy"), std::string::npos);
  EXPECT_NE(message(in, {.clip_eps_low = -0.1}).find("clip_eps_low"), std::string::npos);
  GrpoLossOptions dual;
  dual.dual_clip_c = 1.0;
  EXPECT_NE(message(in, dual).find("dual_clip_c"), std::string::npos);
  EXPECT_NE(message(in, {.aggregation = LossAggregation::seq_sum_const_len}).find("const_length"),
            std::string::npos);
  EXPECT_THROW(aha::policy::parse_loss_aggregation("seq-mean-token-mean"), aha::Error);
}

}  // namespace
