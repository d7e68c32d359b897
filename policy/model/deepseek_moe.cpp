#include "policy/model/deepseek_moe.h"

#include <limits>

namespace aha {
namespace {

torch::Tensor swiglu(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& up,
                     const torch::Tensor& down) {
  return torch::linear(torch::silu(torch::linear(x, gate)) * torch::linear(x, up), down);
}

}  // namespace

DeepseekMoeWeights allocate_deepseek_moe_weights(const ModelConfig& c, const torch::TensorOptions& options) {
  const auto& e = c.deepseek_moe;
  const int64_t H = c.hidden_size, I = e.moe_intermediate_size, S = e.n_shared_experts * I;
  DeepseekMoeWeights w;
  w.gate = torch::empty({e.n_routed_experts, H}, options.dtype(torch::kFloat32));
  w.score_bias = torch::zeros({e.n_routed_experts}, options.dtype(torch::kFloat32));
  for (int64_t i = 0; i < e.n_routed_experts; ++i) {
    w.expert_gate.push_back(torch::empty({I, H}, options));
    w.expert_up.push_back(torch::empty({I, H}, options));
    w.expert_down.push_back(torch::empty({H, I}, options));
  }
  w.shared_gate = torch::empty({S, H}, options);
  w.shared_up = torch::empty({S, H}, options);
  w.shared_down = torch::empty({H, S}, options);
  return w;
}

void append_deepseek_moe_parameters(const DeepseekMoeWeights& w, const std::string& p,
                                    std::vector<std::pair<std::string, torch::Tensor>>& out) {
  for (size_t i = 0; i < w.expert_gate.size(); ++i) {
    const std::string e = p + "experts." + std::to_string(i) + ".";
    out.emplace_back(e + "gate_proj.weight", w.expert_gate[i]);
    out.emplace_back(e + "up_proj.weight", w.expert_up[i]);
    out.emplace_back(e + "down_proj.weight", w.expert_down[i]);
  }
  out.emplace_back(p + "gate.weight", w.gate);
  out.emplace_back(p + "shared_experts.gate_proj.weight", w.shared_gate);
  out.emplace_back(p + "shared_experts.up_proj.weight", w.shared_up);
  out.emplace_back(p + "shared_experts.down_proj.weight", w.shared_down);
}

void append_deepseek_moe_buffers(const DeepseekMoeWeights& w, const std::string& p,
                                 std::vector<std::pair<std::string, torch::Tensor>>& out) {
  out.emplace_back(p + "gate.e_score_correction_bias", w.score_bias);
}

DeepseekRouting deepseek_route(const ModelConfig& c, const DeepseekMoeWeights& w, const torch::Tensor& x) {
  const auto& e = c.deepseek_moe;
  const int64_t N = x.size(0), E = e.n_routed_experts, G = e.n_group;
  DeepseekRouting r;
  r.logits = torch::linear(x.to(torch::kFloat32), w.gate);
  auto scores = r.logits.sigmoid();
  auto choice = scores + w.score_bias;  // the bias only chooses; it never weights
  // Each group ranked by the sum of its two best biased scores; the best topk_group kept.
  auto group_scores = std::get<0>(choice.view({N, G, E / G}).topk(2, -1)).sum(-1);  // [N, G]
  auto groups = std::get<1>(torch::topk(group_scores, e.topk_group, -1, true, false));
  auto group_mask = torch::zeros_like(group_scores).scatter_(1, groups, 1.0);
  auto expert_mask = group_mask.unsqueeze(-1).expand({N, G, E / G}).reshape({N, E});
  choice = choice.masked_fill(expert_mask.logical_not(), -std::numeric_limits<double>::infinity());
  r.indices = std::get<1>(torch::topk(choice, e.num_experts_per_tok, -1, true, false));
  r.weights = scores.gather(1, r.indices);
  if (e.norm_topk_prob) r.weights = r.weights / (r.weights.sum(-1, true) + 1e-20);
  r.weights = r.weights * e.routed_scaling_factor;
  return r;
}

torch::Tensor deepseek_moe(const ModelConfig& c, const DeepseekMoeWeights& w, const torch::Tensor& x) {
  const int64_t H = c.hidden_size;
  auto tokens = x.reshape({-1, H});  // [N, H]
  auto routing = deepseek_route(c, w, tokens);
  auto routed = torch::zeros_like(tokens);
  // Per expert, the tokens routed to it (as transformers' reference loop does).
  const int64_t E = c.deepseek_moe.n_routed_experts;
  auto hits = torch::bincount(routing.indices.flatten(), {}, E).cpu();
  for (int64_t e = 0; e < E; ++e) {
    if (hits[e].item<int64_t>() == 0) continue;
    auto where = torch::nonzero(routing.indices == e);  // [n, 2]: token, position in its top k
    auto token = where.select(1, 0), slot = where.select(1, 1);
    auto y = swiglu(tokens.index_select(0, token), w.expert_gate[e], w.expert_up[e], w.expert_down[e]);
    auto weight = routing.weights.index({token, slot}).unsqueeze(1);  // float32, as in transformers
    routed = routed.index_add(0, token, (y * weight).to(tokens.scalar_type()));
  }
  auto out = routed + swiglu(tokens, w.shared_gate, w.shared_up, w.shared_down);
  return out.view(x.sizes());
}

}  // namespace aha
