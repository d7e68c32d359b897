// swiglu: silu(gate) * up by hand on any device; on CUDA, its one-launch kernels against
// LibTorch's ops bit for bit, forward and backward, separate and concatenated projections.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "policy/model/swiglu.h"

namespace {

TEST(Swiglu, GatesUpBySiluOfGateByHand) {
  auto gate = torch::tensor({0.0, 1.0, -2.0}, torch::kFloat64), up = torch::tensor({3.0, 4.0, 5.0}, torch::kFloat64);
  auto out = aha::swiglu(gate, up);
  EXPECT_DOUBLE_EQ(out[0].item<double>(), 0.0);
  EXPECT_NEAR(out[1].item<double>(), 4.0 / (1.0 + std::exp(-1.0)), 1e-12);
  EXPECT_NEAR(out[2].item<double>(), 5.0 * -2.0 / (1.0 + std::exp(2.0)), 1e-12);
  // The concatenated form reads the gate's columns first.
  auto both = aha::swiglu_concatenated(torch::cat({gate, up}).view({1, 6}));
  EXPECT_TRUE(torch::allclose(both.view({3}), out));
  EXPECT_THROW(aha::swiglu_concatenated(torch::zeros({2, 5})), std::exception);
}

TEST(Swiglu, CudaKernelsEqualLibTorchOpsBitForBitForwardAndBackward) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (auto dtype : {torch::kBFloat16, torch::kHalf, torch::kFloat32}) {
    SCOPED_TRACE(c10::toString(dtype));
    torch::manual_seed(11);
    auto on = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
    // Values over silu's whole range, including large negative gates (exp overflows to inf there).
    auto gate_up = (torch::randn({3, 37, 2 * 96}, on.dtype(torch::kFloat32)) * 4).to(dtype);
    gate_up.view({-1})[0] = -100;
    auto g = torch::randn({3, 37, 96}, on);
    {  // separate projections (dense MLPs, shared experts)
      auto gate = gate_up.narrow(-1, 0, 96).contiguous().requires_grad_(true);
      auto up = gate_up.narrow(-1, 96, 96).contiguous().requires_grad_(true);
      auto gate_ref = gate.detach().clone().requires_grad_(true), up_ref = up.detach().clone().requires_grad_(true);
      auto fused = aha::swiglu(gate, up), ref = aha::swiglu_unfused(gate_ref, up_ref);
      ASSERT_TRUE(fused.grad_fn() && fused.grad_fn()->name().find("SwigluFunction") != std::string::npos);
      EXPECT_TRUE(torch::equal(fused, ref));
      fused.backward(g);
      ref.backward(g);
      EXPECT_TRUE(torch::equal(gate.grad(), gate_ref.grad())) << (gate.grad() - gate_ref.grad()).abs().max();
      EXPECT_TRUE(torch::equal(up.grad(), up_ref.grad())) << (up.grad() - up_ref.grad()).abs().max();
    }
    {  // one concatenated projection (experts, the rollout's fused gate/up)
      auto both = gate_up.detach().clone().requires_grad_(true);
      auto both_ref = gate_up.detach().clone().requires_grad_(true);
      auto fused = aha::swiglu_concatenated(both);
      auto ref = aha::swiglu_unfused(both_ref.narrow(-1, 0, 96), both_ref.narrow(-1, 96, 96));
      ASSERT_TRUE(fused.grad_fn() && fused.grad_fn()->name().find("ConcatenatedSwiglu") != std::string::npos);
      EXPECT_TRUE(torch::equal(fused, ref));
      fused.backward(g);
      ref.backward(g);
      EXPECT_TRUE(torch::equal(both.grad(), both_ref.grad())) << (both.grad() - both_ref.grad()).abs().max();
      EXPECT_GT(both.grad().abs().max().item<double>(), 0.1);
    }
  }
}

}  // namespace
