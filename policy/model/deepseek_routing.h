// DeepSeek-V3's expert choice alone (the selection half of deepseek_moe.h's gate), for code that
// recounts which experts a forward pass chose from its router logits: the learner's
// routing-bias update (policy/learner/routing_bias.h). deepseek_route uses the same function, so
// the recount is the forward's own choice.
#pragma once
#include <torch/types.h>

#include "policy/model/model_config.h"

namespace aha {

// The experts [N, k] int64 chosen from the scores [N, E] float32 (the sigmoid of the gate's
// logits) and the routing bias [E] float32: the bias is added to choose (never to weight), the
// topk_group of n_group groups whose two best biased scores sum highest are kept, and the top
// num_experts_per_tok experts inside them are taken.
torch::Tensor deepseek_select_experts(const ModelConfig& c, const torch::Tensor& scores, const torch::Tensor& score_bias);

}  // namespace aha
