// apply_rope: transformers' x * cos + rotate_half(x) * sin, checked by hand on any device; on
// CUDA, its one-launch kernel against LibTorch's ops bit for bit, forward and backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "policy/model/rotary.h"

namespace {

using aha::apply_rope;
using aha::apply_rope_unfused;

// The tables as rope_cos_sin makes them: cos, and sin with its first half negated.
std::pair<torch::Tensor, torch::Tensor> tables(int64_t B, int64_t T, int64_t D, torch::TensorOptions on) {
  auto angle = torch::rand({B, 1, T, D / 2}, on.dtype(torch::kFloat32)) * 6.0;
  auto cos = torch::cat({angle.cos(), angle.cos()}, -1).to(on.dtype());
  auto sin = angle.sin();
  auto signed_sin = torch::cat({-sin, sin}, -1).to(on.dtype());
  return {cos, signed_sin};
}

TEST(Rotary, RotatesEachPairOfHalvesByHand) {
  // D = 4: pairs (x0, x2) and (x1, x3) rotate by angles a (i = 0) and b (i = 1):
  // out0 = x0 cos a - x2 sin a, out2 = x2 cos a + x0 sin a (transformers' rotate_half).
  const double a = 0.3, b = 1.1;
  auto x = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kFloat64).view({1, 1, 1, 4});
  auto cos = torch::tensor({std::cos(a), std::cos(b), std::cos(a), std::cos(b)}, torch::kFloat64).view({1, 1, 1, 4});
  auto ssin = torch::tensor({-std::sin(a), -std::sin(b), std::sin(a), std::sin(b)}, torch::kFloat64).view({1, 1, 1, 4});
  auto out = apply_rope(x, cos, ssin).view({4});
  EXPECT_NEAR(out[0].item<double>(), 1 * std::cos(a) - 3 * std::sin(a), 1e-12);
  EXPECT_NEAR(out[1].item<double>(), 2 * std::cos(b) - 4 * std::sin(b), 1e-12);
  EXPECT_NEAR(out[2].item<double>(), 3 * std::cos(a) + 1 * std::sin(a), 1e-12);
  EXPECT_NEAR(out[3].item<double>(), 4 * std::cos(b) + 2 * std::sin(b), 1e-12);
}

struct Layout {
  const char* name;
  int64_t B, T, heads, D;
  bool shared_tables;  // [1, 1, T, D] rather than one table per row
  bool strided;        // x a narrow of a wider projection (q and k of a fused qkv), not dense
};

TEST(Rotary, CudaKernelEqualsLibTorchOpsBitForBitForwardAndBackward) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const Layout layouts[] = {{"learner: transposed [B, T, heads, D]", 3, 37, 5, 64, false, false},
                            {"prefill: narrow of a fused projection", 2, 19, 4, 128, false, true},
                            {"one table for every row, D 32", 4, 11, 2, 32, true, false}};
  for (auto dtype : {torch::kBFloat16, torch::kHalf, torch::kFloat32}) {
    for (const auto& l : layouts) {
      SCOPED_TRACE(std::string(l.name) + " " + c10::toString(dtype));
      torch::manual_seed(3);
      auto on = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
      auto [cos, ssin] = tables(l.shared_tables ? 1 : l.B, l.T, l.D, on);
      torch::Tensor base;
      if (l.strided)  // [B, T, (heads + 3) * D]: the rotated heads first, then others
        base = torch::randn({l.B, l.T, (l.heads + 3) * l.D}, on).narrow(2, 0, l.heads * l.D);
      else
        base = torch::randn({l.B, l.T, l.heads * l.D}, on);
      auto x = base.view({l.B, l.T, l.heads, l.D}).transpose(1, 2).detach().requires_grad_(true);
      auto x_ref = x.detach().clone().requires_grad_(true);
      auto fused = apply_rope(x, cos, ssin);
      auto ref = apply_rope_unfused(x_ref, cos, ssin);
      ASSERT_TRUE(fused.grad_fn() && fused.grad_fn()->name().find("RopeFunction") != std::string::npos)
          << "the kernel was not taken: " << (fused.grad_fn() ? fused.grad_fn()->name() : "no grad_fn");
      EXPECT_TRUE(torch::equal(fused, ref));
      // A gradient as attention hands it back: not contiguous in the [B, heads, T, D] order.
      auto g = torch::randn({l.B, l.T, l.heads, l.D}, on).transpose(1, 2);
      fused.backward(g);
      ref.backward(g);
      EXPECT_TRUE(torch::equal(x.grad(), x_ref.grad()));
      EXPECT_GT(x.grad().abs().max().item<double>(), 0.1);
    }
  }
}

TEST(Rotary, CudaKernelLeavesMixedDtypesAndGradientTablesToLibTorch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto on = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto [cos, ssin] = tables(1, 5, 16, on);
  auto x = torch::randn({1, 2, 5, 16}, on).requires_grad_(true);
  // Under autocast the tables may be float32 while q is bf16: LibTorch promotes, so must we.
  auto mixed = apply_rope(x, cos.to(torch::kFloat32), ssin.to(torch::kFloat32));
  EXPECT_EQ(mixed.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(mixed, apply_rope_unfused(x, cos.to(torch::kFloat32), ssin.to(torch::kFloat32))));
  auto trainable = cos.detach().requires_grad_(true);
  auto out = apply_rope(x, trainable, ssin);
  out.sum().backward();
  EXPECT_TRUE(trainable.grad().defined());  // the kernel has no gradient for the tables
}

}  // namespace
