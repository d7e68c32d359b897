// Off-policy correction for asynchronous GRPO: a rollout produced by a policy version older than
// the learner's (bounded by algorithm.max_staleness) is trained with the decoupled PPO objective
// and a truncated importance-sampling (TIS) weight. Per completion token t of row i:
//
//   w_{i,t} = min( exp(logp_old - logp_behaviour), cap )           (detached; cap = tis_cap)
//   r_{i,t} = exp(logp - logp_old)
//   L_{i,t} = w_{i,t} * max( -A_i r, -A_i clip(r, 1 - eps_low, 1 + eps_high) )
//
// logp_behaviour: the log-probs the rollout stored when it sampled the token (the stale policy);
// logp_old: the learner's policy at the start of this train_step, recomputed (the "proximal"
// policy); logp: the policy being trained. PPO's trust region is thus taken around the
// learner's current policy (not the stale one), and the stale sample is reweighted towards it,
// with the weight truncated at cap to bound the variance (the weight is never below 0; above
// cap it is cap). logp_old - logp_behaviour is clamped to [-20, 20] before exp, as grpo_loss's
// ratio is.
//
// References: the decoupled PPO objective of AReaL (Fu et al. 2025, "AReaL: A Large-Scale
// Asynchronous Reinforcement Learning System for Language Reasoning", arXiv:2505.24298, eq. 5),
// truncated at cap as in Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You
// Off-Policy RL Training" (verl's truncated IS, tis_imp_ratio_cap, default 2; prime-rl's
// async trainer truncates the same ratio).
//
// With max_staleness 0 none of this runs: old_logprobs are the behaviour log-probs and the loss
// is grpo_loss's on-policy one, exactly as without asynchronous GRPO.
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "policy/learner/grpo_trainer.h"

namespace aha::policy {

// Throws aha::Error unless cap is a finite number > 0.
void validate_tis_cap(double cap);

// w [B, T] float32 of the formula above; 1 where mask is 0 (those tokens do not enter the loss).
// proximal, behaviour, mask: [B, T] on one device.
torch::Tensor truncated_is_weights(const torch::Tensor& proximal, const torch::Tensor& behaviour,
                                   const torch::Tensor& mask, double cap);

// Over the completion tokens (mask 1): the mean and largest w, and the share of tokens whose
// untruncated weight exceeded cap. All 0 without completion tokens.
struct TruncatedIsStats {
  double weight_mean = 0, weight_max = 0, truncated_frac = 0;
  int64_t tokens = 0;
};
TruncatedIsStats truncated_is_stats(const torch::Tensor& proximal, const torch::Tensor& behaviour,
                                    const torch::Tensor& mask, double cap);

// The batch to train a (possibly stale) rollout on: old_logprobs replaced by the trainer's
// policy's own log-probs as it is now (GrpoTrainer::policy_logprobs), is_weights set from the
// batch's behaviour log-probs (its old_logprobs on entry). stats, when given, receives the
// weights' figures.
PolicyBatch decoupled_batch(const GrpoTrainer& trainer, const PolicyBatch& batch, double cap,
                            TruncatedIsStats* stats = nullptr);

}  // namespace aha::policy
