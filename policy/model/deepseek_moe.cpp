#include "policy/model/deepseek_moe.h"

#include <limits>

#include "policy/model/deepseek_routing.h"
#include "policy/model/moe.h"
#include "policy/model/swiglu.h"

namespace aha {

DeepseekMoeWeights allocate_deepseek_moe_weights(const ModelConfig& c, const torch::TensorOptions& options,
                                                  WeightMemory memory) {
  const int64_t H = c.hidden_size, S = c.deepseek_moe.n_shared_experts * c.moe_intermediate_size;
  DeepseekMoeWeights w;
  w.score_bias = torch::zeros({c.num_experts}, options.dtype(torch::kFloat32));
  w.shared_gate = new_weight({S, H}, options, memory);
  w.shared_up = new_weight({S, H}, options, memory);
  w.shared_down = new_weight({H, S}, options, memory);
  return w;
}

void append_deepseek_moe_parameters(const DeepseekMoeWeights& w, const std::string& p,
                                    std::vector<std::pair<std::string, torch::Tensor>>& out) {
  out.emplace_back(p + "shared_experts.gate_proj.weight", w.shared_gate);
  out.emplace_back(p + "shared_experts.up_proj.weight", w.shared_up);
  out.emplace_back(p + "shared_experts.down_proj.weight", w.shared_down);
}

void append_deepseek_moe_buffers(const DeepseekMoeWeights& w, const std::string& p,
                                 std::vector<std::pair<std::string, torch::Tensor>>& out) {
  out.emplace_back(p + "gate.e_score_correction_bias", w.score_bias);
}

torch::Tensor deepseek_select_experts(const ModelConfig& c, const torch::Tensor& scores, const torch::Tensor& score_bias) {
  const auto& e = c.deepseek_moe;
  const int64_t N = scores.size(0), E = c.num_experts, G = e.n_group;
  auto choice = scores + score_bias;  // the bias only chooses; it never weights
  // Each group ranked by the sum of its two best biased scores; the best topk_group kept.
  auto group_scores = std::get<0>(choice.view({N, G, E / G}).topk(2, -1)).sum(-1);  // [N, G]
  auto groups = std::get<1>(torch::topk(group_scores, e.topk_group, -1, true, false));
  auto group_mask = torch::zeros_like(group_scores).scatter_(1, groups, 1.0);
  auto expert_mask = group_mask.unsqueeze(-1).expand({N, G, E / G}).reshape({N, E});
  choice = choice.masked_fill(expert_mask.logical_not(), -std::numeric_limits<double>::infinity());
  return std::get<1>(torch::topk(choice, c.num_experts_per_tok, -1, true, false));
}

DeepseekRouting deepseek_route(const ModelConfig& c, const torch::Tensor& gate, const torch::Tensor& score_bias,
                               const torch::Tensor& x) {
  DeepseekRouting r;
  r.logits = torch::linear(x.to(torch::kFloat32), gate.to(torch::kFloat32));
  auto scores = r.logits.sigmoid();
  r.indices = deepseek_select_experts(c, scores, score_bias);
  r.weights = scores.gather(1, r.indices);
  if (c.norm_topk_prob) r.weights = r.weights / (r.weights.sum(-1, true) + 1e-20);
  r.weights = r.weights * c.deepseek_moe.routed_scaling_factor;
  return r;
}

torch::Tensor deepseek_moe(const ModelConfig& c, const torch::Tensor& gate, const torch::Tensor& experts_gate_up,
                           const torch::Tensor& experts_down, const DeepseekMoeWeights& w, const torch::Tensor& x,
                           std::vector<torch::Tensor>* router_logits, const ExpertDispatch* dispatch) {
  auto tokens = x.reshape({-1, c.hidden_size});  // [N, H]
  auto routing = deepseek_route(c, gate, w.score_bias, tokens);
  if (router_logits) router_logits->push_back(routing.logits);
  auto routed = dispatch ? dispatch->routed_experts(tokens, routing.indices, routing.weights, experts_gate_up, experts_down)
                         : routed_experts(tokens, routing.indices, routing.weights, experts_gate_up, experts_down);
  auto shared = swiglu(torch::linear(tokens, w.shared_gate), torch::linear(tokens, w.shared_up));
  shared = torch::linear(shared, w.shared_down);
  return (routed + shared).view(x.sizes());
}

}  // namespace aha
