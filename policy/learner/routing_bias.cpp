#include "policy/learner/routing_bias.h"

#include <torch/torch.h>

#include "core/error.h"
#include "policy/model/deepseek_routing.h"

namespace aha::policy {

torch::Tensor deepseek_expert_loads(const Transformer& model, const std::vector<torch::Tensor>& router_logits,
                                    const torch::Tensor& mask) {
  const auto& c = model.config();
  const auto biases = model.named_buffers();
  require(!biases.empty(), "routing bias: the policy has no routing bias (only DeepSeek-V3 models have one)");
  require(router_logits.size() == biases.size(),
          "routing bias: " + std::to_string(router_logits.size()) + " layers of router logits for " +
              std::to_string(biases.size()) + " routing biases");
  torch::NoGradGuard no_grad;
  auto loads = torch::zeros({int64_t(biases.size()), c.num_experts}, torch::kFloat64);
  for (size_t l = 0; l < biases.size(); ++l) {
    const auto& logits = router_logits[l];
    auto chosen = deepseek_select_experts(c, logits.detach().to(torch::kFloat32).sigmoid(), biases[l].second);  // [N, k]
    auto real = mask.defined() ? mask.reshape({-1}).to(chosen.device(), torch::kFloat64)
                               : torch::ones({chosen.size(0)}, chosen.options().dtype(torch::kFloat64));
    require(real.size(0) == chosen.size(0), "routing bias: the mask does not match the router logits' rows");
    auto weights = real.unsqueeze(1).expand(chosen.sizes()).reshape({-1});
    auto counts = torch::zeros({c.num_experts}, weights.options()).index_add_(0, chosen.reshape({-1}), weights);
    loads[int64_t(l)].copy_(counts.cpu());
  }
  return loads;
}

void update_routing_bias(Transformer& model, const torch::Tensor& loads, double rate) {
  auto biases = model.named_buffers();
  require(loads.dim() == 2 && loads.size(0) == int64_t(biases.size()),
          "routing bias: loads must be [moe layers, experts]");
  torch::NoGradGuard no_grad;
  for (size_t l = 0; l < biases.size(); ++l) {
    auto& bias = biases[l].second;
    auto load = loads[int64_t(l)].to(torch::kFloat64);
    auto direction = (load.mean() - load).sign();  // +1 underloaded, -1 overloaded, 0 balanced
    bias.add_((direction * rate).to(bias.device(), bias.scalar_type()));
  }
}

}  // namespace aha::policy
