// Routed experts (moe.h) against a token-by-token reference written from the definition, the
// loop and grouped-GEMM paths against each other (values and gradients), and the router and
// load-balancing loss (moe_routing.h) on hand-worked cases.
#include <gtest/gtest.h>

#include <cmath>

#include "policy/learner/autocast_scope.h"
#include "policy/model/moe.h"
#include "policy/model/moe_routing.h"

namespace {

// out[n] = sum_j w[n, j] * down_e(silu(gate_e x) * up_e x), one token and one slot at a time.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                        const torch::Tensor& gate_up, const torch::Tensor& down) {
  const int64_t I = gate_up.size(1) / 2;
  auto out = torch::zeros_like(x);
  for (int64_t n = 0; n < x.size(0); ++n) {
    for (int64_t j = 0; j < experts.size(1); ++j) {
      const int64_t e = experts[n][j].item<int64_t>();
      auto gate = torch::mv(gate_up[e].narrow(0, 0, I), x[n]);
      auto up = torch::mv(gate_up[e].narrow(0, I, I), x[n]);
      out[n] += weights[n][j] * torch::mv(down[e], gate * torch::sigmoid(gate) * up);
    }
  }
  return out;
}

struct Problem {
  torch::Tensor x, experts, weights, gate_up, down;
};

Problem problem(int64_t N, int64_t k) {
  torch::manual_seed(3);
  const int64_t H = 8, I = 8, E = 5;  // rows of 16-byte multiples, as the grouped GEMM needs
  Problem p{torch::randn({N, H}, torch::kFloat64), torch::randint(0, E - 1, {N, k}, torch::kInt64),  // expert 4 idle
            torch::rand({N, k}, torch::kFloat64), torch::randn({E, 2 * I, H}, torch::kFloat64),
            torch::randn({E, H, I}, torch::kFloat64)};
  if (N > 1 && k > 1) p.experts[1][1] = p.experts[1][0];  // the same expert twice in one row
  return p;
}

TEST(RoutedExperts, LoopMatchesTheDefinition) {
  for (int64_t k : {1, 2, 3}) {
    auto p = problem(7, k);
    auto ours = aha::routed_experts(p.x, p.experts, p.weights, p.gate_up, p.down, aha::ExpertKernel::loop);
    EXPECT_LE((ours - reference(p.x, p.experts, p.weights, p.gate_up, p.down)).abs().max().item<double>(), 1e-12)
        << "k " << k;
  }
}

// LibTorch runs _grouped_mm on the CPU too, so the CUDA path's permutation and offsets are
// checked here; float32 (the grouped CPU kernel's floating types) with gradients.
TEST(RoutedExperts, GroupedGemmMatchesLoopWithGradients) {
  auto p = problem(9, 2);
  auto run = [&](aha::ExpertKernel kernel) {
    auto x = p.x.to(torch::kFloat32).requires_grad_(true);
    auto w = p.weights.to(torch::kFloat32).requires_grad_(true);
    auto gu = p.gate_up.to(torch::kFloat32).requires_grad_(true);
    auto d = p.down.to(torch::kFloat32).requires_grad_(true);
    auto out = aha::routed_experts(x, p.experts, w, gu, d, kernel);
    (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), x.grad(), w.grad(), gu.grad(), d.grad()};
  };
  auto loop = run(aha::ExpertKernel::loop), grouped = run(aha::ExpertKernel::grouped);
  for (size_t i = 0; i < loop.size(); ++i) {
    EXPECT_LE((loop[i] - grouped[i]).abs().max().item<double>(), 1e-5) << "tensor " << i;
  }
  EXPECT_EQ(loop[3][4].abs().max().item<double>(), 0.0);  // the idle expert gets no gradient
}

// On an sm90+ GPU (skipped elsewhere): the automatic choice takes the grouped GEMM in bf16 and
// agrees with the loop within bf16 rounding.
TEST(RoutedExperts, CudaGroupedGemmMatchesLoop) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!aha::grouped_experts_apply(torch::kCUDA, torch::kBFloat16, 64, 32)) GTEST_SKIP() << "no grouped GEMM here";
  torch::manual_seed(5);
  auto opt = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  auto x = torch::randn({37, 64}, opt);
  auto experts = torch::randint(0, 8, {37, 2}, opt.dtype(torch::kInt64));
  auto weights = torch::rand({37, 2}, opt);
  auto gate_up = 0.1 * torch::randn({8, 64, 64}, opt), down = 0.1 * torch::randn({8, 64, 32}, opt);
  auto grouped = aha::routed_experts(x, experts, weights, gate_up, down);
  auto loop = aha::routed_experts(x, experts, weights, gate_up, down, aha::ExpertKernel::loop);
  const double scale = loop.abs().max().item<double>();
  EXPECT_LE((grouped - loop).abs().max().item<double>(), 0.02 * scale);
}

// The learner's mixed precision (fp32 master weights under bf16 autocast) also takes the
// grouped GEMM, in bf16 as autocast's linear would: it agrees with the autocast loop, and the
// gradients reach the fp32 weights in fp32.
TEST(RoutedExperts, CudaAutocastWithFloat32WeightsTakesTheGroupedGemm) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  if (!aha::grouped_experts_apply(torch::kCUDA, torch::kBFloat16, 64, 32)) GTEST_SKIP() << "no grouped GEMM here";
  torch::manual_seed(6);
  auto opt = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  auto x0 = torch::randn({41, 64}, opt);
  auto experts = torch::randint(0, 8, {41, 2}, opt.dtype(torch::kInt64));
  auto weights = torch::rand({41, 2}, opt);
  auto gate_up0 = 0.1 * torch::randn({8, 64, 64}, opt), down0 = 0.1 * torch::randn({8, 64, 32}, opt);
  auto run = [&](aha::ExpertKernel kernel) {
    auto x = x0.clone().requires_grad_(true);
    auto gu = gate_up0.clone().requires_grad_(true), d = down0.clone().requires_grad_(true);
    torch::Tensor out;
    {
      aha::policy::AutocastScope autocast(true);
      out = aha::routed_experts(x, experts, weights, gu, d, kernel);
    }
    out.to(torch::kFloat32).sum().backward();
    return std::vector<torch::Tensor>{out.detach().to(torch::kFloat32), x.grad(), gu.grad(), d.grad()};
  };
  auto automatic = run(aha::ExpertKernel::automatic), grouped = run(aha::ExpertKernel::grouped);
  auto loop = run(aha::ExpertKernel::loop);
  for (size_t i = 0; i < loop.size(); ++i) {
    EXPECT_TRUE(torch::equal(automatic[i], grouped[i])) << "tensor " << i << ": automatic is not the grouped GEMM";
    const double scale = loop[i].abs().max().item<double>();
    EXPECT_LE((grouped[i] - loop[i]).abs().max().item<double>(), 0.03 * scale) << "tensor " << i;
  }
  EXPECT_EQ(grouped[2].scalar_type(), torch::kFloat32);
}

TEST(RoutedExperts, NoTokensGiveZeros) {
  auto p = problem(0, 2);
  auto out = aha::routed_experts(p.x, p.experts, p.weights, p.gate_up, p.down);
  EXPECT_EQ(out.sizes(), p.x.sizes());
}

TEST(RoutedExperts, ShapeMistakesAreErrors) {
  auto p = problem(4, 2);
  EXPECT_THROW(aha::routed_experts(p.x, p.experts, p.weights.narrow(1, 0, 1), p.gate_up, p.down), std::exception);
  EXPECT_THROW(aha::routed_experts(p.x, p.experts, p.weights, p.gate_up, p.down.narrow(2, 0, 5)), std::exception);
  EXPECT_THROW(aha::routed_experts(p.x, p.experts.to(torch::kInt32), p.weights, p.gate_up, p.down), std::exception);
}

TEST(MoeRouting, SoftmaxTopKByHand) {
  // One token, router logits [ln 1, ln 2, ln 3, ln 4] (x = 1, router column = the logits):
  // probabilities 0.1, 0.2, 0.3, 0.4; top-2 experts 3, 2 with 0.4, 0.3, renormalised 4/7, 3/7.
  auto x = torch::ones({1, 1}, torch::kFloat64);
  auto router = torch::log(torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kFloat64)).view({4, 1});
  auto plain = aha::softmax_topk_routing(x, router, 2, false);
  EXPECT_EQ(plain.experts[0][0].item<int64_t>(), 3);
  EXPECT_EQ(plain.experts[0][1].item<int64_t>(), 2);
  EXPECT_NEAR(plain.weights[0][0].item<double>(), 0.4, 1e-7);
  EXPECT_NEAR(plain.weights[0][1].item<double>(), 0.3, 1e-7);
  auto normed = aha::softmax_topk_routing(x, router, 2, true);
  EXPECT_NEAR(normed.weights[0][0].item<double>(), 4.0 / 7.0, 1e-7);
  EXPECT_NEAR(normed.weights[0][1].item<double>(), 3.0 / 7.0, 1e-7);
}

TEST(MoeRouting, LoadBalancingLossByHand) {
  // Two experts, top-1, two tokens with probabilities (0.8, 0.2) and (0.4, 0.6), plus a padding
  // token that picks expert 0 and must not count. Real tokens: f = (1/2, 1/2), P = (0.6, 0.4);
  // loss = 2 * (0.5 * 0.6 + 0.5 * 0.4) = 1.
  auto logit = [](double p0) { return std::vector<double>{std::log(p0), std::log(1 - p0)}; };
  std::vector<double> flat;
  for (double p0 : {0.8, 0.4, 0.999}) {
    auto l = logit(p0);
    flat.insert(flat.end(), l.begin(), l.end());
  }
  auto logits = torch::tensor(flat, torch::kFloat64).view({3, 2});
  auto mask = torch::tensor({1, 1, 0}, torch::kInt64);
  EXPECT_NEAR(aha::load_balancing_loss({logits}, 2, 1, mask).item<double>(), 1.0, 1e-6);
  // Unmasked: f = (2/3, 1/3), P = ((0.8 + 0.4 + 0.999) / 3, (0.2 + 0.6 + 0.001) / 3).
  const double expected = 2 * (2.0 / 3 * (2.199 / 3) + 1.0 / 3 * (0.801 / 3));
  EXPECT_NEAR(aha::load_balancing_loss({logits}, 2, 1).item<double>(), expected, 1e-6);
  // Two layers count together: the same layer twice gives the same loss.
  EXPECT_NEAR(aha::load_balancing_loss({logits, logits}, 2, 1, mask).item<double>(), 1.0, 1e-6);
  // Expert load: balanced over the real tokens (1), all on expert 0 without the mask's help: 2 * 2/3.
  EXPECT_NEAR(aha::expert_load_max({logits}, 2, 1, mask), 1.0, 1e-9);
  EXPECT_NEAR(aha::expert_load_max({logits}, 2, 1), 4.0 / 3.0, 1e-9);
}

}  // namespace
