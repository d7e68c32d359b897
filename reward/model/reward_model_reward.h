// The `reward_model` reward: a completion scored by a Hugging Face sequence-classification
// checkpoint (reward/model/sequence_classifier.h), as verl and OpenRLHF plug reward models in.
// The all-scenario GRPO stage of the R1 flow scores general prompts this way: helpfulness on
// the final answer, harmlessness on the whole response.
//
// Options (unknown ones are errors):
//   path        the checkpoint directory (required): config.json, safetensors, tokenizer
//   scope       "answer" (default): the text after the last </think>, or the whole completion
//               when there is none; "response": the whole completion
//   template    "model" (default): the checkpoint's chat template over [user: prompt,
//               assistant: text], without a generation prompt, tokenized without adding special
//               tokens (the template has them); or a pattern holding {response} (and optionally
//               {prompt}), tokenized with the tokenizer's special tokens
//   label       the head output that is the reward (0)
//   transform   "none" (default: the logit as it is) or "sigmoid" (into (0, 1))
//   device      "cpu" (default), "cuda" or "cuda:N"
//   dtype       "float32" (default), "bfloat16"
//   max_tokens  the longest input scored (0, the default: the model's max_position_embeddings);
//               a longer one keeps its last max_tokens tokens (the response, not the prompt's
//               start), and says so in the diagnostic
// Each checkpoint is loaded once per (path, device, dtype) and shared by every reward that
// names it; forwards run one at a time (each uses LibTorch's own threads).
#pragma once

namespace aha::reward {

// Adds "reward_model" to the reward kinds (reward/reward_registry.h). Idempotent.
void register_reward_model_reward();

}  // namespace aha::reward
