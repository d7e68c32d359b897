// Variable-length attention (varlen_attention.h): the boundaries of a hand-made packed layout,
// the masked reference against each sequence attended alone, and (CUDA only, skipped
// elsewhere) the flash kernel against the masked reference, forward and gradient, in bf16 and
// under autocast over float32 inputs.
#include "policy/model/varlen_attention.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace aha {
namespace {

std::vector<int64_t> values(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Two rows of 6: [a a b b b pad], [c c c c pad pad].
torch::Tensor hand_segments() { return torch::tensor({1, 1, 2, 2, 2, 0, 1, 1, 1, 1, 0, 0}, torch::kInt64).view({2, 6}); }

TEST(VarlenAttention, LayoutListsEveryRunOfEveryRow) {
  auto layout = varlen_layout(hand_segments(), torch::kCPU);
  EXPECT_EQ(values(layout.cu_seqlens), (std::vector<int64_t>{0, 2, 5, 6, 10, 12}));
  EXPECT_EQ(layout.cu_seqlens.scalar_type(), torch::kInt32);
  EXPECT_EQ(layout.max_seqlen, 4);
  EXPECT_EQ(layout.tokens, 12);
  // A row that ends and the next that starts with the same id are still two sequences.
  auto same = varlen_layout(torch::ones({2, 3}, torch::kInt64), torch::kCPU);
  EXPECT_EQ(values(same.cu_seqlens), (std::vector<int64_t>{0, 3, 6}));
  EXPECT_THROW(varlen_layout(torch::ones({4}, torch::kInt64), torch::kCPU), Error);
}

TEST(VarlenAttention, NotOfferedOnTheCpu) {
  EXPECT_FALSE(varlen_attention_supported(torch::kCPU, torch::kBFloat16, 64));
  auto layout = varlen_layout(hand_segments(), torch::kCPU);
  auto q = torch::randn({12, 4, 16}, torch::kBFloat16), kv = torch::randn({12, 2, 16}, torch::kBFloat16);
  EXPECT_THROW(varlen_causal_attention(q, kv, kv, layout, 0.25), Error);
  EXPECT_THROW(varlen_masked_attention(q, kv.narrow(0, 0, 11), kv, layout, 0.25), Error);
}

// Each sequence alone: plain causal softmax attention written out, grouped heads repeated.
torch::Tensor attend_alone(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale) {
  const int64_t L = q.size(0), rep = q.size(1) / k.size(1);
  auto kk = k.repeat_interleave(rep, 1), vv = v.repeat_interleave(rep, 1);
  auto scores = torch::einsum("qhd,khd->hqk", {q, kk}) * scale;
  auto causal = torch::ones({L, L}, torch::kBool).tril();
  scores = scores.masked_fill(causal.logical_not(), -INFINITY);
  return torch::einsum("hqk,khd->qhd", {torch::softmax(scores, -1), vv});
}

TEST(VarlenAttention, MaskedReferenceEqualsEachSequenceAlone) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto layout = varlen_layout(hand_segments(), torch::kCPU);
  auto q = torch::randn({12, 4, 8}, gen), k = torch::randn({12, 2, 8}, gen), v = torch::randn({12, 2, 8}, gen);
  auto out = varlen_masked_attention(q, k, v, layout, 0.3);
  const std::vector<int64_t> cu = values(layout.cu_seqlens);
  for (size_t i = 0; i + 1 < cu.size(); ++i) {
    const int64_t s = cu[i], n = cu[i + 1] - cu[i];
    auto alone = attend_alone(q.narrow(0, s, n), k.narrow(0, s, n), v.narrow(0, s, n), 0.3);
    EXPECT_TRUE(torch::allclose(out.narrow(0, s, n), alone, 1e-5, 1e-6)) << "sequence " << i;
  }
}

// CUDA only: the flash kernel against the masked reference on a long-tailed packed layout with
// grouped heads (8 query heads over 2), forward and the gradients of q, k and v.
TEST(VarlenAttention, CudaFlashKernelEqualsMaskedReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device cuda(torch::kCUDA);
  // Three rows of 160: sequences of 150 / 7 + 1 + 90 / 64 + 64 + 16 tokens, padding tails.
  std::vector<int64_t> seg;
  auto row = [&](std::vector<int64_t> lengths) {
    int64_t used = 0, id = 0;
    for (auto n : lengths) {
      ++id;
      for (int64_t j = 0; j < n; ++j) seg.push_back(id);
      used += n;
    }
    for (; used < 160; ++used) seg.push_back(0);
  };
  row({150});
  row({7, 1, 90});
  row({64, 64, 16});
  auto segments = torch::tensor(seg, torch::kInt64).view({3, 160});
  auto layout = varlen_layout(segments, cuda);
  const int64_t N = layout.tokens, D = 64;
  const double scale = 1.0 / std::sqrt(double(D));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  auto q0 = torch::randn({N, 8, D}, gen), k0 = torch::randn({N, 2, D}, gen), v0 = torch::randn({N, 2, D}, gen);
  auto grad_out = torch::randn({N, 8, D}, gen).to(cuda);
  for (bool autocast : {false, true}) {
    SCOPED_TRACE(autocast ? "float32 under autocast" : "bf16");
    // Both sides start from the same bf16-rounded values.
    auto leaf = [&](const torch::Tensor& t, torch::ScalarType dtype) {
      return t.to(torch::kBFloat16).to(cuda, dtype).detach().requires_grad_(true);
    };
    const auto dtype = autocast ? torch::kFloat32 : torch::kBFloat16;
    auto q = leaf(q0, dtype), k = leaf(k0, dtype), v = leaf(v0, dtype);
    torch::Tensor out;
    {
      at::autocast::set_autocast_enabled(at::kCUDA, autocast);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      EXPECT_TRUE(varlen_attention_supported(cuda, dtype, D));
      out = varlen_causal_attention(q, k, v, layout, scale);
      at::autocast::set_autocast_enabled(at::kCUDA, false);
    }
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    (out.to(torch::kFloat32) * grad_out).sum().backward();
    auto rq = leaf(q0, torch::kFloat32), rk = leaf(k0, torch::kFloat32), rv = leaf(v0, torch::kFloat32);
    auto ref = varlen_masked_attention(rq, rk, rv, layout, scale);
    (ref * grad_out).sum().backward();
    auto close = [](const torch::Tensor& a, const torch::Tensor& b, const char* what) {
      auto diff = (a.to(torch::kFloat32) - b).abs().max().item<double>();
      auto size = b.abs().max().item<double>();
      EXPECT_LE(diff, 2e-2 * size) << what << ": max difference " << diff << " of values up to " << size;
    };
    close(out, ref, "output");
    close(q.grad(), rq.grad(), "dq");
    close(k.grad(), rk.grad(), "dk");
    close(v.grad(), rv.grad(), "dv");
    EXPECT_EQ(q.grad().scalar_type(), dtype);
  }
}

}  // namespace
}  // namespace aha
