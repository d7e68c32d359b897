// DeepSeekMoE, the feed-forward block of DeepSeek-V3's layers from first_k_dense_replace on, as
// transformers' DeepseekV3MoE computes it: a gate picks num_experts_per_tok routed experts per
// token, their SwiGLU outputs are summed with the routing weights, and the shared experts (one
// SwiGLU of n_shared_experts x moe_intermediate_size) are added for every token.
//
// The gate (DeepSeek's "noaux_tc"): scores = sigmoid(x W_gate^T) in float32; the selection
// adds e_score_correction_bias to the scores, keeps the topk_group of n_group expert groups
// whose two best biased scores sum highest, and takes the top k experts inside them; the
// weights are the *unbiased* scores of those experts, normalised to sum 1 (norm_topk_prob) and
// times routed_scaling_factor. The gate weight and the bias stay float32 in every model dtype,
// as transformers keeps them.
//
// The bias is a buffer, not a parameter: gradient descent never trains it (DeepSeek adjusts it
// outside gradient descent for load balancing). During RL it stays frozen unless the recipe's
// algorithm.routing_bias_update_rate asks the learner for that adjustment
// (policy/learner/routing_bias.h; the choice alone is deepseek_routing.h). It is loaded and
// saved with the checkpoint (Transformer::named_buffers).
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/model/model_config.h"
#include "policy/model/moe.h"
#include "policy/model/weight_memory.h"

namespace aha {

// What DeepSeekMoE adds to a MoE layer's router (DecoderLayerWeights::router_weight, float32
// here) and stacked routed experts (experts_gate_up [E, 2I, H], experts_down [E, H, I]).
struct DeepseekMoeWeights {
  torch::Tensor score_bias;  // [E] float32: e_score_correction_bias (a buffer)
  torch::Tensor shared_gate, shared_up, shared_down;  // [S I, H], [S I, H], [H, S I] (S = n_shared_experts)
};

// Uninitialised shared experts (options' dtype; without memory: weight_memory.h) and a zero bias
// (a buffer: always with its memory) for one MoE layer.
DeepseekMoeWeights allocate_deepseek_moe_weights(const ModelConfig& c, const torch::TensorOptions& options,
                                                  WeightMemory memory = WeightMemory::allocated);

// Checkpoint names (prefix "model.layers.<i>.mlp.") of the shared experts, and separately of
// the buffer.
void append_deepseek_moe_parameters(const DeepseekMoeWeights& w, const std::string& prefix,
                                    std::vector<std::pair<std::string, torch::Tensor>>& out);
void append_deepseek_moe_buffers(const DeepseekMoeWeights& w, const std::string& prefix,
                                 std::vector<std::pair<std::string, torch::Tensor>>& out);

struct DeepseekRouting {
  torch::Tensor logits;   // [N, E] float32: the gate's logits (before the sigmoid)
  torch::Tensor indices;  // [N, k] int64: the chosen experts
  torch::Tensor weights;  // [N, k] float32: their weights
};

// The gate for tokens x [N, H]; gate [E, H] float32.
DeepseekRouting deepseek_route(const ModelConfig& c, const torch::Tensor& gate, const torch::Tensor& score_bias,
                               const torch::Tensor& x);

// The whole block, x [..., H] -> [..., H] in x's dtype: the gate, the routed experts through
// moe.h's routed_experts (token permutation; grouped GEMM where it applies), plus the shared
// experts. With router_logits, the gate's logits [N, E] are appended (for expert-load metrics;
// DeepSeek-V3 itself trains without an auxiliary loss). With `dispatch`, the routed experts go
// through it (expert parallelism; the experts' tensors then hold this rank's slice).
torch::Tensor deepseek_moe(const ModelConfig& c, const torch::Tensor& gate, const torch::Tensor& experts_gate_up,
                           const torch::Tensor& experts_down, const DeepseekMoeWeights& w, const torch::Tensor& x,
                           std::vector<torch::Tensor>* router_logits = nullptr,
                           const ExpertDispatch* dispatch = nullptr);

}  // namespace aha
