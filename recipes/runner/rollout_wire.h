// What the controller and the rollout workers of a split layout (rollout_controller.h,
// rollout_worker.h) say to each other through the control store, as JSON text:
//
//   task   {"id": 7, "batch": 3, "min_version": 2, "seed": "1234", "prompts": ["<hex>", ...]}
//   result {"id": 7, "batch": 3, "version": 2, "worker": 1, "seconds": 0.8,
//           "groups": [{"prompt_ids": [..], "completions": [{"tokens": [..],
//                       "logprob_bits": [..], "text_hex": "..", "finish": "eos"}, ..]}, ..]}
//
// A task is one sampling round of a training step's prompts (round 0: the step's; with dynamic
// sampling, later rounds: the refill's, step_sampling.h), to be sampled with `seed` (the
// controller's round_seed, as one process draws them) by a policy of version >= min_version.
// A result is the groups in the prompts' order, each with group_size completions in sample
// order, and the policy version that sampled them. Log-probs travel as their float32 bit patterns, so the learner gets the
// worker's values exactly, and texts as the hex of their bytes (a completion may end inside a
// UTF-8 sequence, which JSON text would replace). The seed is a decimal string: JSON numbers lose 64-bit integers.
// Parsing checks every field and throws aha::Error naming the one at fault.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rollout/rollout_engine.h"

namespace aha::recipes {

struct RolloutTask {
  int64_t id = 0;
  int64_t batch = 0;
  int64_t min_version = 0;
  uint64_t seed = 0;
  std::vector<std::string> prompts;  // the examples' prompt texts (the worker applies the template)
};

struct RolloutGroup {
  std::vector<int64_t> prompt_ids;
  std::vector<Completion> completions;
};

struct RolloutResult {
  int64_t id = 0;
  int64_t batch = 0;
  int64_t version = 0;
  int64_t worker = 0;
  double seconds = 0;  // the worker's sampling time
  std::vector<RolloutGroup> groups;
};

std::string task_to_json(const RolloutTask& task);
RolloutTask task_from_json(const std::string& text);
std::string result_to_json(const RolloutResult& result);
RolloutResult result_from_json(const std::string& text);

}  // namespace aha::recipes
