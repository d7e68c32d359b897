// The GRPO policy loss over completion tokens, with the variants researchers compare: DAPO's
// clip-higher and token-mean aggregation, dual-clip, Dr. GRPO's constant-length sum, GSPO's
// sequence-level ratio, a KL penalty to a frozen reference and an entropy bonus. It works on
// per-token log-probs only (no model): the learner computes them and calls backward() on `loss`.
//
// Notation, per sequence i and token t (m = mask, 1 on completion tokens only):
//   A_i       advantage of completion i (the same for all its tokens)
//   r_{i,t}   = exp(logp - old_logp)   importance ratio vs the behaviour policy that sampled
//             the tokens; logp - old_logp is clamped to [-20, 20] first (as verl)
//   GSPO (sequence_ratio): every token of i uses the length-normalised sequence ratio
//             s_i = exp( sum_t m (logp - old_logp) / sum_t m ),  log s_i clamped to <= 10
//             (as verl); its gradient flows to all tokens of i (GSPO, arXiv:2507.18071).
// Per-token policy loss (PPO clipped surrogate with DAPO's decoupled clip range):
//   L = max( -A r, -A clip(r, 1 - eps_low, 1 + eps_high) )
// Dual-clip (Ye et al. 2020; verl's clip_ratio_c), only where A < 0: L = min(L, -A c), which
// bounds the loss of a token whose ratio has run far above 1. c must be > 1.
// Off-policy correction (asynchronous GRPO, off_policy_correction.h): with is_weights w given,
// old_logp is the proximal policy's (the learner's before this update) and every token's L is
// multiplied by its w = min(pi_old / pi_behaviour, cap) (detached): L' = w L. Undefined: w = 1.
// Per-token KL (see kl.h) k = KL estimate of logp vs ref_logp, per-token entropy H (given).
// Total:  loss = agg(L) + beta * agg(k) - entropy_coef * agg(H)
// Aggregations agg(x), over the tokens with m = 1 (N_seq counts sequences with >= 1 token):
//   token_mean           sum_{i,t} m x / sum_{i,t} m                 (DAPO; verl "token-mean")
//   seq_mean_token_mean  1/N_seq sum_i (sum_t m x / sum_t m)        (original GRPO)
//   seq_sum_const_len    1/N_seq sum_i (sum_t m x) / L_const       (Dr. GRPO; verl
//                                                                   "seq-mean-token-sum-norm")
// Micro-batching: a mini-batch split into micro-batches whose gradients are accumulated gets
// exactly the mini-batch loss when every call passes the mini-batch's total_tokens and
// total_sequences: they replace sum m and N_seq above, so the micro-batch losses add up.
//
// Metrics (detached scalars over this call's completion tokens, weights: token_count):
//   clip_frac_low   share of tokens with r < 1 - eps_low and A < 0 (the lower clip is active)
//   clip_frac_high  share of tokens with r > 1 + eps_high and A > 0 (the upper clip is active)
//   dual_clip_frac  share of tokens with A < 0 and r > c (dual-clip active; 0 without it)
//   ppo_kl          token mean of old_logp - logp (approx. KL(old || current), as verl)
//   approx_kl       token mean of k3 to the reference (only when ref_logprobs is given)
//   ratio_mean / ratio_max / ratio_min   of r (or s_i in GSPO mode) over completion tokens
//   policy_loss, kl_loss, entropy        agg(L), agg(k), agg(H) as they enter the loss
//   token_count, sequence_count          of this call
// Packed layout (policy/learner/grpo_packing.h): with sequence_index given, a row holds several
// sequences (or parts of none); "sequence i" above is then every token whose sequence_index is
// i, advantages are per sequence ([S]), and every aggregation, the GSPO ratio and the counts are
// taken per sequence exactly as for one sequence per row, so a packed batch gets the loss and
// gradient of the same sequences padded one per row. Tokens with sequence_index -1 are not
// counted (as mask 0).
// With no completion token at all (a padding-only micro-batch) the loss and its gradient are 0,
// ratio_max is 0 and ratio_min +inf.
// Inputs in float64 are computed in float64, anything else in float32. All tensors must be on
// one device (CPU or CUDA); metrics stay there until named_values().
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy/learner/kl.h"

namespace aha::policy {

enum class LossAggregation { token_mean, seq_mean_token_mean, seq_sum_const_len };

// "token_mean", "seq_mean_token_mean" or "seq_sum_const_len"; throws aha::Error otherwise.
LossAggregation parse_loss_aggregation(const std::string& name);

struct GrpoLossOptions {
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;                        // DAPO's clip-higher uses 0.28
  std::optional<double> dual_clip_c = std::nullopt;  // e.g. 3.0; unset: no dual-clip
  double beta = 0.0;  // KL coefficient in the loss; 0: no reference needed
  KlEstimator kl_estimator = KlEstimator::k3;
  double entropy_coef = 0.0;  // > 0 needs entropy
  LossAggregation aggregation = LossAggregation::token_mean;
  int64_t const_length = 0;     // L_const of seq_sum_const_len (e.g. max new tokens)
  bool sequence_ratio = false;  // GSPO
};

// Throws aha::Error naming the option at fault.
void validate(const GrpoLossOptions& options);

struct GrpoLossInputs {
  torch::Tensor logprobs = {};      // [B, T] current policy, requires grad
  torch::Tensor old_logprobs = {};  // [B, T] behaviour policy (from the rollout), no grad
  torch::Tensor ref_logprobs = {};  // [B, T] reference policy, or undefined (required if beta > 0)
  torch::Tensor advantages = {};    // [B], or [S] with sequence_index
  torch::Tensor mask = {};          // [B, T] 1 (or true) on completion tokens, 0 elsewhere
  torch::Tensor entropy = {};       // [B, T] per-token policy entropy, or undefined
  int64_t total_tokens = 0;         // micro-batching: the mini-batch's counts; 0: this call's
  int64_t total_sequences = 0;
  torch::Tensor sequence_index = {};  // [B, T] int64 in [-1, S) or undefined: packed (see above)
  torch::Tensor is_weights = {};    // [B, T] truncated importance weights (see above), or undefined
};

struct GrpoLossMetrics {
  torch::Tensor policy_loss, kl_loss, entropy;  // kl_loss / entropy undefined when not computed
  torch::Tensor clip_frac_low, clip_frac_high, dual_clip_frac;
  torch::Tensor ppo_kl, approx_kl;  // approx_kl undefined without ref_logprobs
  torch::Tensor ratio_mean, ratio_max, ratio_min;
  torch::Tensor token_count, sequence_count;

  // The defined metrics as ("train/<name>", value) pairs, copied to the host in one transfer.
  std::vector<std::pair<std::string, double>> named_values() const;
};

struct GrpoLossResult {
  torch::Tensor loss;  // scalar, differentiable w.r.t. logprobs (and entropy)
  GrpoLossMetrics metrics;
};

// Throws aha::Error naming the tensor at fault (undefined, wrong shape) or the option.
GrpoLossResult grpo_loss(const GrpoLossInputs& inputs, const GrpoLossOptions& options);

}  // namespace aha::policy
