// The optimizer run that zero_masters_test.cpp repeats under ZeRO-1/2 on a world of ranks and in
// one process unsharded: three bf16 parameters (p0 = {1, -0.5, 3}, whose element 2 gets a
// negative gradient in each of the first 24 steps; p1 [5]; p2 [4, 3] with weight decay), AdamW
// with float32 masters at lr 1e-3, step k's gradients the same on every rank (as all-reduced):
// p0's exact in bf16, the others seeded by k and rounded to bf16. Mixed (float32_param 0, 1 or
// 2), that one is float32 instead (as a bf16 model's float32 router gate), its gradients the same
// values.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/learner/optimizer.h"

namespace aha::parallel::testing {

struct MastersParams {
  torch::Tensor p0, p1, p2;
  std::vector<std::pair<std::string, torch::Tensor>> named() const { return {{"p0", p0}, {"p1", p1}, {"p2", p2}}; }
  std::vector<policy::ParamGroup> groups() const { return {{"decay", {p2}, 0.01, 1.0}, {"no_decay", {p0, p1}, 0.0, 1.0}}; }
};

inline constexpr int64_t kMastersElements = 3 + 5 + 12;

inline torch::Tensor seeded_bf16(std::vector<int64_t> shape, uint64_t seed, double scale) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return (torch::randn(shape, gen) * scale).to(torch::kBFloat16);
}

inline MastersParams masters_params(int float32_param = -1) {
  MastersParams p;
  p.p0 = torch::tensor({1.0f, -0.5f, 3.0f}).to(torch::kBFloat16);
  p.p1 = seeded_bf16({5}, 1, 1.0);
  p.p2 = seeded_bf16({4, 3}, 2, 1.0);
  int i = 0;
  for (auto* t : {&p.p0, &p.p1, &p.p2}) {
    if (i++ == float32_param) *t = t->to(torch::kFloat32);
    t->requires_grad_(true);
  }
  return p;
}

// max_grad_norm 0: no clipping, so nothing depends on the norm's summation order.
inline policy::OptimizerOptions masters_options(bool fp32_master, double max_grad_norm) {
  policy::OptimizerOptions o;
  o.lr = 1e-3;
  o.max_grad_norm = max_grad_norm;
  o.fp32_master = fp32_master;
  return o;
}

// Step k's gradients of p0, p1, p2 (bf16 values, each in its parameter's dtype).
inline std::vector<torch::Tensor> masters_grads(int64_t k, const MastersParams& p) {
  return {torch::tensor({0.25f - k / 64.0f, 1.5f, -0.75f + k / 32.0f}).to(torch::kBFloat16).to(p.p0.scalar_type()),
          seeded_bf16({5}, 1000 + k, 0.5).to(p.p1.scalar_type()),
          seeded_bf16({4, 3}, 2000 + k, 0.5).to(p.p2.scalar_type())};
}

// The write between steps of the re-seed test: p0 set to 2 (as a weight load would).
inline void masters_write(MastersParams& p) {
  torch::NoGradGuard no_grad;
  p.p0.fill_(2.0);
}

// Steps [first, last) unsharded, writing p0 before step `write_at` (-1: never).
inline void masters_steps(policy::Optimizer& opt, MastersParams& p, int64_t first, int64_t last, int64_t write_at = -1) {
  for (int64_t k = first; k < last; ++k) {
    if (k == write_at) masters_write(p);
    const auto g = masters_grads(k, p);
    p.p0.mutable_grad() = g[0];
    p.p1.mutable_grad() = g[1];
    p.p2.mutable_grad() = g[2];
    opt.step();
  }
}

inline std::vector<torch::Tensor> masters_weights(const MastersParams& p) {
  return {p.p0.detach().clone(), p.p1.detach().clone(), p.p2.detach().clone()};
}

}  // namespace aha::parallel::testing
