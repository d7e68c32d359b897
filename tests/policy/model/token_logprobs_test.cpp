// Chunked token log-probs against the direct computation (full log_softmax) in float64, for
// values, entropies and gradients, at several chunk sizes and temperatures, with the backward
// pass working from kept logits and from recomputed ones.
#include "policy/model/token_logprobs.h"

#include <gtest/gtest.h>

namespace {

using aha::LogitsMemory;

struct Case {
  int64_t chunk;
  double temperature;
  LogitsMemory memory;
};

class ChunkedLogprobs : public ::testing::TestWithParam<Case> {};

TEST_P(ChunkedLogprobs, MatchesDirectLogSoftmaxAndItsGradient) {
  const auto [chunk, temperature, memory] = GetParam();
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
  auto out = aha::chunked_token_logprobs(hidden2, weight2, targets, temperature, /*want_entropy=*/true, chunk,
                                         512ll << 20, memory);
  EXPECT_EQ(out.logprobs.scalar_type(), torch::kFloat32);
  EXPECT_LE((out.logprobs.to(torch::kFloat64) - ref).abs().max().item<double>(), 1e-5);
  EXPECT_LE((out.entropy.to(torch::kFloat64) - ref_entropy).abs().max().item<double>(), 1e-5);
  EXPECT_FALSE(out.entropy.requires_grad());
  auto grads = torch::autograd::grad({(out.logprobs.to(torch::kFloat64) * upstream).sum()}, {hidden2, weight2});
  EXPECT_LE((grads[0] - ref_grads[0]).abs().max().item<double>(), 1e-5);
  EXPECT_LE((grads[1] - ref_grads[1]).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(ChunksAndTemperatures, ChunkedLogprobs,
                         ::testing::Values(Case{1, 1.0, LogitsMemory::recompute}, Case{5, 1.0, LogitsMemory::recompute},
                                           Case{37, 1.0, LogitsMemory::recompute},
                                           Case{100, 1.0, LogitsMemory::recompute},
                                           Case{8, 0.7, LogitsMemory::recompute}, Case{0, 1.3, LogitsMemory::recompute},
                                           Case{1, 1.0, LogitsMemory::keep}, Case{5, 1.0, LogitsMemory::keep},
                                           Case{100, 1.0, LogitsMemory::keep}, Case{8, 0.7, LogitsMemory::keep},
                                           Case{0, 1.3, LogitsMemory::automatic}));

// bf16, as the learner runs: kept and recomputed logits give the same log-probs (the forward is
// the same) and gradients that agree to bf16 rounding (the weight gradient is summed over chunks
// in float32 in one case and inside one product in the other), close to float64's.
TEST(ChunkedLogprobs, KeptAndRecomputedLogitsAgreeInBf16) {
  torch::manual_seed(5);
  const int64_t N = 50, H = 32, V = 257;
  auto hidden = torch::randn({N, H}).to(torch::kBFloat16);
  auto weight = (torch::randn({V, H}) * 0.3).to(torch::kBFloat16);
  auto targets = torch::randint(0, V, {N}, torch::kInt64);
  auto upstream = torch::randn({N});
  std::vector<std::vector<torch::Tensor>> results;
  for (auto memory : {LogitsMemory::recompute, LogitsMemory::keep}) {
    auto h = hidden.clone().requires_grad_();
    auto w = weight.clone().requires_grad_();
    auto out = aha::chunked_token_logprobs(h, w, targets, 0.9, true, 16, 0, memory);
    auto grads = torch::autograd::grad({(out.logprobs * upstream).sum()}, {h, w});
    results.push_back({out.logprobs, out.entropy, grads[0].to(torch::kFloat64), grads[1].to(torch::kFloat64)});
  }
  EXPECT_TRUE(torch::equal(results[0][0], results[1][0]));
  EXPECT_TRUE(torch::equal(results[0][1], results[1][1]));
  auto h64 = hidden.to(torch::kFloat64).requires_grad_();
  auto w64 = weight.to(torch::kFloat64).requires_grad_();
  auto ref = torch::log_softmax(torch::mm(h64, w64.t()) / 0.9, -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  auto ref_grads = torch::autograd::grad({(ref * upstream.to(torch::kFloat64)).sum()}, {h64, w64});
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 2; ++k) {
      auto err = (results[k][2 + i] - ref_grads[i]).norm() / ref_grads[i].norm();
      EXPECT_LE(err.item<double>(), 1e-2) << "gradient " << i << " memory " << k;
    }
    auto between = (results[0][2 + i] - results[1][2 + i]).norm() / ref_grads[i].norm();
    EXPECT_LE(between.item<double>(), 1e-2) << "gradient " << i;
  }
}

// A forward without gradient keeps nothing, whatever the mode (and still computes).
TEST(ChunkedLogprobs, NoGradForwardWithKeepMode) {
  torch::NoGradGuard no_grad;
  auto hidden = torch::randn({6, 8});
  auto weight = torch::randn({11, 8});
  auto targets = torch::randint(0, 11, {6}, torch::kInt64);
  auto kept = aha::chunked_token_logprobs(hidden, weight, targets, 1.0, false, 4, 0, LogitsMemory::keep);
  auto ref = torch::log_softmax(torch::mm(hidden, weight.t()), -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  EXPECT_LE((kept.logprobs - ref).abs().max().item<double>(), 1e-5);
}

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

// On CUDA at temperature 1, bf16 chunks go to ATen's softmax as they are (it widens them itself):
// the values, the entropy and both gradients equal the float32 computation from the very same
// bf16 logits, whether backward keeps the logits or recomputes them.
TEST(ChunkedLogprobs, CudaBf16AtTemperatureOneEqualsFloat32SoftmaxOfTheSameLogits) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  auto on = torch::TensorOptions().device(torch::kCUDA);
  auto hidden = torch::randn({45, 64}, on).to(torch::kBFloat16);
  auto weight = (torch::randn({1000, 64}, on) * 0.3).to(torch::kBFloat16);
  auto targets = torch::randint(0, 1000, {45}, on.dtype(torch::kInt64));
  auto upstream = torch::randn({45}, on);
  auto h_ref = hidden.clone().requires_grad_(), w_ref = weight.clone().requires_grad_();
  auto logp = torch::log_softmax(torch::mm(h_ref, w_ref.t()).to(torch::kFloat32), -1);
  auto ref = logp.gather(1, targets.unsqueeze(1)).squeeze(1);
  auto ref_entropy = -(logp.exp() * logp).sum(-1);
  (ref * upstream).sum().backward();
  for (auto memory : {LogitsMemory::keep, LogitsMemory::recompute}) {
    auto h = hidden.clone().requires_grad_(), w = weight.clone().requires_grad_();
    auto out = aha::chunked_token_logprobs(h, w, targets, 1.0, true, 16, 0, memory);
    EXPECT_LE((out.logprobs - ref).abs().max().item<double>(), 1e-5);
    EXPECT_LE((out.entropy - ref_entropy).abs().max().item<double>(), 1e-4);
    (out.logprobs * upstream).sum().backward();
    auto relative = [](const torch::Tensor& a, const torch::Tensor& b) {
      return ((a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max() / b.to(torch::kFloat32).abs().max())
          .item<double>();
    };
    EXPECT_LE(relative(h.grad(), h_ref.grad()), 1e-2);  // bf16 gradients, rounded in different places
    EXPECT_LE(relative(w.grad(), w_ref.grad()), 1e-2);
  }
}

}  // namespace
