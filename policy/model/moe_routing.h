// Qwen3-MoE's router (softmax over the experts, top-k, optionally renormalised) and the
// auxiliary load-balancing loss of Switch Transformer as transformers computes it
// (load_balancing_loss_func), with the expert-load figure the learner logs. The experts
// themselves are moe.h's.
#pragma once
#include <torch/types.h>

#include <vector>

namespace aha {

struct TopKRouting {
  torch::Tensor logits;   // [N, E] in x's dtype (what the auxiliary loss reads)
  torch::Tensor weights;  // [N, k] in x's dtype: softmax probabilities (float32) of the top k, renormalised
                          // to sum 1 with norm_topk_prob, then cast as transformers casts them
  torch::Tensor experts;  // [N, k] int64, by decreasing probability
};

// x [N, H], router_weight [E, H].
TopKRouting softmax_topk_routing(const torch::Tensor& x, const torch::Tensor& router_weight, int64_t top_k,
                                 bool norm_topk_prob);

// transformers' load_balancing_loss_func: over every layer's router logits [N, E] together,
//   E * sum_e f_e * P_e
// with f_e the fraction of the top-k assignments that went to expert e and P_e the mean softmax
// probability of e, both over the real tokens (mask [N] or any shape of N elements, 1 real;
// undefined: all). A float32 scalar, differentiable through the probabilities.
torch::Tensor load_balancing_loss(const std::vector<torch::Tensor>& router_logits, int64_t num_experts,
                                  int64_t top_k, const torch::Tensor& mask = {});

// The busiest expert's share of the top-k assignments relative to an even spread, the largest
// over layers: max_e (assignments to e / all assignments) * E (1 when balanced, E / k when every
// token picks the same k experts).
// Over the real tokens as above; no gradient.
double expert_load_max(const std::vector<torch::Tensor>& router_logits, int64_t num_experts, int64_t top_k,
                       const torch::Tensor& mask = {});

}  // namespace aha
