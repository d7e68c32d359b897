// Group-relative advantages for GRPO and its variants: one scalar per completion, computed
// from the rewards of the G completions sampled for the same prompt. No value model.
//
// Contract: rewards is a 1-D float tensor [N*G], laid out group after group (completions
// g*G .. g*G+G-1 answer prompt g). The result has the same shape, dtype and device.
// Statistics are computed in float64. Let r_i be a reward, m its group's mean:
//   grpo     A_i = (r_i - m) / (std + eps)   std unbiased (Bessel), as in verl and TRL
//   dr_grpo  A_i = r_i - m                   (Dr. GRPO: no std normalisation)
//   rloo     A_i = r_i - (sum_group - r_i) / (G - 1)   leave-one-out baseline
//                = G / (G - 1) * (r_i - m)
// A group whose rewards are all equal (a degenerate group: nothing to learn from) gets an
// advantage of exactly zero in every mode, before and after whitening.
// whiten_batch then whitens the advantages across the whole batch:
//   A_i <- (A_i - mean(A)) / (std(A) + eps)     (mean and unbiased std over all N*G)
// leaving the degenerate groups' zeros in place. dr_grpo + whiten_batch is OpenRLHF's
// REINFORCE++-baseline; note that TRL's scale_rewards="batch" instead divides the group-centred
// rewards by the std of the raw rewards, which this does not implement.
// G must be >= 2. Non-finite rewards are an error naming the first one's index.
#pragma once
#include <torch/torch.h>

#include <string>

namespace aha::policy {

enum class AdvantageMode { grpo, dr_grpo, rloo };

// "grpo", "dr_grpo" or "rloo"; throws aha::Error listing the known names otherwise.
AdvantageMode parse_advantage_mode(const std::string& name);

struct AdvantageOptions {
  AdvantageMode mode = AdvantageMode::grpo;
  bool whiten_batch = false;
  double eps = 1e-6;  // verl's default
};

// rewards [N*G] -> advantages [N*G]. See the file comment for the formulas.
torch::Tensor compute_advantages(const torch::Tensor& rewards, int64_t group_size,
                                 const AdvantageOptions& options);

// rewards [N*G] -> bool [N] (on the CPU): true where all G rewards of group g are equal. DAPO's
// dynamic sampling drops these groups and samples new prompts until the batch is full.
torch::Tensor degenerate_groups(const torch::Tensor& rewards, int64_t group_size);

}  // namespace aha::policy
