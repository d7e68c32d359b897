#include "policy/learner/advantages.h"

#include "core/error.h"

namespace aha::policy {
namespace {

// Checks the layout and returns the rewards as float64 [N, G].
torch::Tensor grouped_rewards(const torch::Tensor& rewards, int64_t group_size) {
  require(rewards.defined(), "advantages: rewards tensor is undefined");
  require(rewards.dim() == 1, "advantages: rewards must be 1-D [N*G], got " +
                                  std::to_string(rewards.dim()) + " dimensions");
  require(rewards.is_floating_point(), "advantages: rewards must be a floating-point tensor");
  require(group_size >= 2,
          "advantages: group_size must be >= 2, got " + std::to_string(group_size));
  require(rewards.size(0) > 0 && rewards.size(0) % group_size == 0,
          "advantages: rewards length " + std::to_string(rewards.size(0)) +
              " is not a positive multiple of group_size " + std::to_string(group_size));
  auto r = rewards.to(torch::kFloat64);
  auto finite = torch::isfinite(r);
  if (!finite.all().item<bool>()) {
    auto first = torch::nonzero(finite.logical_not())[0][0].item<int64_t>();
    throw Error("advantages: reward " + std::to_string(first) + " is not finite");
  }
  return r.view({-1, group_size});
}

// bool [N, 1] on r's device: all rewards of the group equal.
torch::Tensor degenerate_rows(const torch::Tensor& grouped) {
  return (grouped == grouped.select(1, 0).unsqueeze(1)).all(1, /*keepdim=*/true);
}

}  // namespace

AdvantageMode parse_advantage_mode(const std::string& name) {
  if (name == "grpo") return AdvantageMode::grpo;
  if (name == "dr_grpo") return AdvantageMode::dr_grpo;
  if (name == "rloo") return AdvantageMode::rloo;
  throw Error("advantages: unknown mode '" + name + "' (known: grpo, dr_grpo, rloo)");
}

torch::Tensor compute_advantages(const torch::Tensor& rewards, int64_t group_size,
                                 const AdvantageOptions& options) {
  require(options.eps >= 0.0, "advantages: eps must be >= 0");
  auto r = grouped_rewards(rewards, group_size);  // [N, G] float64
  const double g = static_cast<double>(group_size);
  auto centred = r - r.mean(1, /*keepdim=*/true);
  torch::Tensor adv;
  switch (options.mode) {
    case AdvantageMode::grpo:
      adv = centred / (r.std(1, /*unbiased=*/true, /*keepdim=*/true) + options.eps);
      break;
    case AdvantageMode::dr_grpo:
      adv = centred;
      break;
    case AdvantageMode::rloo:
      adv = r - (r.sum(1, /*keepdim=*/true) - r) / (g - 1.0);
      break;
  }
  // Exact zeros for degenerate groups: the mean of equal floats can differ from them by an
  // ulp, which grpo's division by (0 + eps) would blow up into a spurious signal.
  auto degenerate = degenerate_rows(r);
  adv = adv.masked_fill(degenerate, 0.0);
  if (options.whiten_batch) {
    auto flat = adv.flatten();
    auto whitened = (flat - flat.mean()) / (flat.std(/*unbiased=*/true) + options.eps);
    adv = whitened.view({-1, group_size}).masked_fill(degenerate, 0.0);
  }
  return adv.flatten().to(rewards.scalar_type());
}

torch::Tensor degenerate_groups(const torch::Tensor& rewards, int64_t group_size) {
  return degenerate_rows(grouped_rewards(rewards, group_size)).squeeze(1).cpu();
}

}  // namespace aha::policy
