#include "policy/model/moe_routing.h"

#include <algorithm>

#include "core/error.h"

namespace aha {
namespace {

// Per layer: the top-k assignment counts per expert [E] (float32) over the real tokens, and the
// number of real tokens.
torch::Tensor assignments(const torch::Tensor& logits, int64_t num_experts, int64_t top_k, const torch::Tensor& mask) {
  auto probs = torch::softmax(logits, -1, torch::kFloat32);
  auto chosen = std::get<1>(probs.topk(top_k, -1)).reshape({-1});  // [N*k]
  auto counts = torch::zeros({num_experts}, probs.options());
  auto ones = mask.defined() ? mask.reshape({-1}).to(probs.options()).repeat_interleave(top_k)
                             : torch::ones({chosen.size(0)}, probs.options());
  return counts.scatter_add_(0, chosen, ones);
}

torch::Tensor flat_mask(const torch::Tensor& mask, const torch::Tensor& logits) {
  if (!mask.defined()) return mask;
  require(mask.numel() == logits.size(0), "load balancing: the mask has " + std::to_string(mask.numel()) +
                                              " elements for " + std::to_string(logits.size(0)) + " router rows");
  return mask.reshape({-1}).to(logits.device(), torch::kFloat32);
}

}  // namespace

TopKRouting softmax_topk_routing(const torch::Tensor& x, const torch::Tensor& router_weight, int64_t top_k,
                                 bool norm_topk_prob) {
  TopKRouting r;
  r.logits = torch::linear(x, router_weight);  // [N, E]
  auto probs = torch::softmax(r.logits, -1, torch::kFloat32);
  auto [top, experts] = probs.topk(top_k, -1);
  if (norm_topk_prob) top = top / top.sum(-1, /*keepdim=*/true);
  r.weights = top.to(r.logits.scalar_type());
  r.experts = experts;
  return r;
}

torch::Tensor load_balancing_loss(const std::vector<torch::Tensor>& router_logits, int64_t num_experts,
                                  int64_t top_k, const torch::Tensor& mask) {
  require(!router_logits.empty(), "load balancing: no router logits (the model has no MoE layer)");
  const auto device = router_logits.front().device();
  auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  auto tokens_per_expert = torch::zeros({num_experts}, options);
  auto probability_sum = torch::zeros({num_experts}, options);
  auto rows = torch::zeros({}, options);
  for (const auto& logits : router_logits) {
    auto m = flat_mask(mask, logits);
    auto probs = torch::softmax(logits, -1, torch::kFloat32);  // [N, E]
    {
      torch::NoGradGuard no_grad;  // transformers' counts carry no gradient either (topk indices)
      tokens_per_expert = tokens_per_expert + assignments(logits.detach(), num_experts, top_k, m);
    }
    probability_sum = probability_sum + (m.defined() ? probs * m.unsqueeze(1) : probs).sum(0);
    rows = rows + (m.defined() ? m.sum() : torch::full({}, double(logits.size(0)), options));
  }
  return (tokens_per_expert / rows * (probability_sum / rows)).sum() * double(num_experts);
}

double expert_load_max(const std::vector<torch::Tensor>& router_logits, int64_t num_experts, int64_t top_k,
                       const torch::Tensor& mask) {
  torch::NoGradGuard no_grad;
  double worst = 0;
  for (const auto& logits : router_logits) {
    auto counts = assignments(logits, num_experts, top_k, flat_mask(mask, logits));
    const double total = counts.sum().item<double>();
    if (total > 0) worst = std::max(worst, counts.max().item<double>() / total * double(num_experts));
  }
  return worst;
}

}  // namespace aha
