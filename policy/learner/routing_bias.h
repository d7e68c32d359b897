// DeepSeek-V3's auxiliary-loss-free load balancing (DeepSeek-V3 report, section 2.1.2) as an
// option of the GRPO learner: after each optimizer step, every MoE layer's routing bias
// (e_score_correction_bias, a buffer that only chooses experts and never weights them) moves by
//   bias_e += rate * sign(mean_e' load_e' - load_e)
// where load_e is how many of the step's real (non-padding) tokens the layer sent to expert e
// in the learner's forward passes, so overloaded experts become less likely and underloaded
// ones more. rate 0 (the default) keeps the bias frozen, as RL usually does.
//
// The loads are those the forward computed: the gate's logits (Transformer::hidden_states'
// router_logits) with the bias in place at the time, through deepseek_moe.h's own selection.
#pragma once
#include <torch/types.h>

#include <vector>

#include "policy/model/transformer.h"

namespace aha::policy {

// Expert loads [moe layers, E] float64 on the CPU: assignments of the real tokens (mask [b, T],
// 1 real; rows of the logits in the same order) per expert, from the router logits [b*T, E]
// of each DeepSeekMoE layer (in layer order, as hidden_states returns them). The model must be
// DeepSeek-V3 (it has routing biases).
torch::Tensor deepseek_expert_loads(const Transformer& model, const std::vector<torch::Tensor>& router_logits,
                                    const torch::Tensor& mask);

// Applies the sign rule above to every routing bias of `model` in place (float32, under
// no-grad); loads [moe layers, E] as above. A layer whose tokens are all on balanced experts
// (load == mean) keeps that expert's bias.
void update_routing_bias(Transformer& model, const torch::Tensor& loads, double rate);

}  // namespace aha::policy
