// Chunked token log-probs against the direct computation (full log_softmax) in float64, for
// values, entropies and gradients, at several chunk sizes and temperatures.
#include "policy/token_logprobs.h"

#include <gtest/gtest.h>

namespace {

struct Case {
  int64_t chunk;
  double temperature;
};

class ChunkedLogprobs : public ::testing::TestWithParam<Case> {};

TEST_P(ChunkedLogprobs, MatchesDirectLogSoftmaxAndItsGradient) {
  const auto [chunk, temperature] = GetParam();
  torch::manual_seed(7);
  const int64_t N = 37, H = 16, V = 101;
  auto hidden = torch::randn({N, H}, torch::kFloat64).requires_grad_();
  auto weight = torch::randn({V, H}, torch::kFloat64).requires_grad_();
  auto targets = torch::randint(0, V, {N}, torch::kInt64);
  auto upstream = torch::randn({N}, torch::kFloat64);  // arbitrary dL/dlogprob

  // Direct reference.
  auto logits = torch::mm(hidden, weight.t()) / temperature;
  auto logp_all = torch::log_softmax(logits, -1);
  auto ref = logp_all.gather(1, targets.unsqueeze(1)).squeeze(1);
  auto ref_entropy = -(logp_all.exp() * logp_all).sum(-1);
  auto ref_grads = torch::autograd::grad({(ref * upstream).sum()}, {hidden, weight});

  auto hidden2 = hidden.detach().clone().requires_grad_();
  auto weight2 = weight.detach().clone().requires_grad_();
  auto out = aha::chunked_token_logprobs(hidden2, weight2, targets, temperature, /*want_entropy=*/true, chunk);
  EXPECT_EQ(out.logprobs.scalar_type(), torch::kFloat32);
  EXPECT_LE((out.logprobs.to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-5);
  EXPECT_LE((out.entropy.to(torch::kFloat64) - ref_entropy).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(out.entropy.requires_grad());
  auto grads = torch::autograd::grad({(out.logprobs.to(torch::kFloat64) * upstream).sum()}, {hidden2, weight2});
  EXPECT_LE((grads[0] - ref_grads[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LE((grads[1] - ref_grads[1]).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(ChunksAndTemperatures, ChunkedLogprobs,
                         ::testing::Values(Case{1, 1.0}, Case{5, 1.0}, Case{37, 1.0}, Case{100, 1.0},
                                           Case{8, 0.7}, Case{0, 1.3}));

TEST(ChunkedLogprobs, Bf16InputsGiveFloat32OutputsCloseToFloat64) {
  torch::manual_seed(3);
  auto hidden = torch::randn({20, 32});
  auto weight = torch::randn({300, 32}) * 0.2;
  auto targets = torch::randint(0, 300, {20}, torch::kInt64);
  auto ref = torch::log_softmax(torch::mm(hidden.to(torch::kFloat64), weight.to(torch::kFloat64).t()), -1)
                 .gather(1, targets.unsqueeze(1)).squeeze(1);
  auto out = aha::chunked_token_logprobs(hidden.to(torch::kBFloat16), weight.to(torch::kBFloat16), targets, 1.0,
                                         false, 7);
  EXPECT_EQ(out.logprobs.scalar_type(), torch::kFloat32);
  EXPECT_EQ(out.entropy.numel(), 0);
  EXPECT_LE((out.logprobs.to(torch::kFloat64) - ref).abs().max().item<double>(), 0.1);
}

}  // namespace
