// Turns sampled completions into the learner's PolicyBatch (policy/grpo_trainer.h).
//
// Row layout, for a prompt of p tokens and a completion of c tokens in a batch whose longest
// prompt has P and longest completion C tokens (T = P + C):
//   input_ids       [pad x (P - p)] prompt [completion] [pad x (C - c)]
//   attention_mask  0 on padding, 1 on real tokens
//   completion_mask [T-1]: position t predicts input_ids[t+1], so the c completion tokens sit
//                   at t = P-1 .. P+c-2
//   old_logprobs    the behaviour log-probs of the completion tokens at those positions, 0
//                   elsewhere
// A completion with no tokens contributes a row with an all-zero completion mask.
// The padding id is `pad_id` (it is never attended to nor scored, but must be a valid id).
#pragma once
#include <cstdint>
#include <vector>

#include "policy/learner/grpo_trainer.h"

namespace aha::recipes {

struct BatchRow {
  const std::vector<int64_t>* prompt;      // not owned
  const std::vector<int64_t>* completion;  // not owned
  const std::vector<float>* logprobs;      // one per completion token
  float advantage = 0;
  float reward = 0;
};

// Throws aha::Error when a row's logprobs and completion differ in length or the batch is empty.
policy::PolicyBatch build_policy_batch(const std::vector<BatchRow>& rows, int64_t pad_id);

}  // namespace aha::recipes
