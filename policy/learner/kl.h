// Per-token estimators of KL(pi_theta || pi_ref), the penalty that keeps the policy near a
// frozen reference policy. Tokens are sampled from the (behaviour) policy, so each estimator is
// a function of the log-ratio at the sampled token. With logp = log pi_theta(y_t) and
// ref = log pi_ref(y_t), and d = ref - logp (= log(pi_ref / pi_theta)):
//   k1 = logp - ref = -d                      unbiased, can be negative (verl "kl")
//   k2 = 0.5 * (logp - ref)^2                 biased, low variance (verl "mse")
//   k3 = exp(d) - d - 1                       unbiased, always >= 0: GRPO's estimator
//                                             (Schulman's k3; verl "low_var_kl", TRL's KL)
// As verl does for k3, d is clamped to [-20, 20] before exp() and k3 to at most 10, so one
// token far from the reference cannot overflow the loss; inside those bounds it is exact.
// Used inside the loss (beta * aggregated KL) or by the caller to put -beta * sum_t KL into the
// reward (the "KL in reward" variant).
#pragma once
#include <torch/torch.h>

#include <string>

namespace aha::policy {

enum class KlEstimator { k1, k2, k3 };

// "k1", "k2" or "k3"; throws aha::Error listing the known names otherwise.
KlEstimator parse_kl_estimator(const std::string& name);

// logprobs, ref_logprobs [B, T] -> per-token KL estimate [B, T]. Differentiable in logprobs;
// ref_logprobs is treated as a constant (detached). Positions outside the completion are
// computed too: the caller masks them.
torch::Tensor per_token_kl(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                           KlEstimator estimator);

// For KL in the reward: sum over completion tokens of the per-token estimate, [B]; the caller
// subtracts beta times it from each completion's reward before computing advantages.
// mask [B, T] is 1 (or true) on completion tokens. No gradient (rewards are constants).
torch::Tensor sequence_kl(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                          const torch::Tensor& mask, KlEstimator estimator);

}  // namespace aha::policy
