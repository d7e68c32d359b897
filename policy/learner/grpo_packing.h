// GRPO micro-batches on the packed layout (recipe algorithm.micro_batch_tokens): the learner
// computes no padding. The sequences of a mini-batch (each PolicyBatch row's real tokens,
// prompt + completion) are packed first-fit by decreasing length (sft_packing.h's
// pack_first_fit) into rows as wide as the longest of them, and consecutive rows are grouped into
// micro-batches of at most micro_batch_tokens slots (at least one row each, so a sequence longer
// than the budget still gets a micro-batch of its own).
//
// Contract:
// - Every PolicyBatch row has contiguous real tokens (attention_mask 1 on one run: left-padded
//   prompt, completion, right padding, as rollouts produce) and a completion mask that is 0
//   wherever the target or the token predicting it is padding; otherwise aha::Error naming the
//   row. A row with no real token is an empty sequence (it takes no slot).
// - In a packed row each sequence starts where the previous one ends, positions restart at 0 and
//   segment_ids number its sequences 1, 2, ... (0: the row's padding tail), so the transformer
//   computes for every sequence what it computes for it alone (transformer.h: the block-diagonal
//   mask on the CPU, the variable-length flash kernel on CUDA).
// - Per-target values ([R, W-1]: column t holds the prediction of token t+1) are the padded
//   batch's ([B, T-1]) moved to the packed slots by gather(); a slot whose target starts the next
//   sequence or is padding gets 0 and sequence_index -1. sequence_index numbers the micro-batch's
//   sequences 0..S-1 in the order of `rows` (their PolicyBatch rows), for grpo_loss's packed mode.
// - scatter_into() is gather()'s inverse on the mapped slots: it writes packed per-target values
//   into a padded [B, T-1] tensor (the reference log-probs, computed packed, kept padded).
// - The packing depends on the attention mask only, so every call on the same batch packs alike.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "policy/learner/grpo_trainer.h"

namespace aha::policy {

struct PackedMicroBatch {
  std::vector<int64_t> rows;      // PolicyBatch rows packed here; sequence i is rows[i]
  torch::Tensor input_ids;        // [R, W] int64 (0 in the padding tail)
  torch::Tensor positions;        // [R, W] int64, from 0 in every sequence
  torch::Tensor segment_ids;      // [R, W] int64, 1.. per sequence within its row, 0 padding
  torch::Tensor sequence_index;   // [R, W-1] int64 in [-1, S)
  torch::Tensor target_source;    // [R, W-1] int64: flat index into [B, T-1], -1 where unmapped
  torch::Tensor row_index;        // [S] int64: rows as a tensor (for advantages)
  int64_t real_tokens = 0;        // sum of the sequences' lengths (slots R*W minus the padding tails)

  int64_t sequences() const { return static_cast<int64_t>(rows.size()); }
  // padded [B, T-1] (any dtype, on the device of target_source) -> [R, W-1].
  torch::Tensor gather(const torch::Tensor& padded) const;
  // Writes packed [R, W-1] into padded [B, T-1] at the mapped slots.
  void scatter_into(torch::Tensor& padded, const torch::Tensor& packed) const;
};

// Packs a PolicyBatch's sequences (its tokens and masks are validated: validate_tokens); index
// tensors and input_ids end up on `device`.
std::vector<PackedMicroBatch> pack_micro_batches(const PolicyBatch& batch, int64_t micro_batch_tokens,
                                                 torch::Device device);

}  // namespace aha::policy
