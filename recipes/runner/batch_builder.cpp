#include "recipes/runner/batch_builder.h"

#include <algorithm>

#include "core/error.h"

namespace aha::recipes {

policy::PolicyBatch build_policy_batch(const std::vector<BatchRow>& rows, int64_t pad_id) {
  require(!rows.empty(), "build_policy_batch: no rows");
  int64_t P = 0, C = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    require(r.prompt && !r.prompt->empty(), "build_policy_batch: row " + std::to_string(i) + " has an empty prompt");
    require(r.completion && r.logprobs && r.logprobs->size() == r.completion->size(),
            "build_policy_batch: row " + std::to_string(i) + " has " +
                std::to_string(r.logprobs ? r.logprobs->size() : 0) + " log-probs for " +
                std::to_string(r.completion ? r.completion->size() : 0) + " completion tokens");
    P = std::max<int64_t>(P, static_cast<int64_t>(r.prompt->size()));
    C = std::max<int64_t>(C, static_cast<int64_t>(r.completion->size()));
  }
  const int64_t B = static_cast<int64_t>(rows.size()), T = P + std::max<int64_t>(C, 1);
  auto ids = torch::full({B, T}, pad_id, torch::kInt64);
  auto attention = torch::zeros({B, T}, torch::kInt64);
  auto completion_mask = torch::zeros({B, T - 1}, torch::kFloat32);
  auto old_logprobs = torch::zeros({B, T - 1}, torch::kFloat32);
  auto advantages = torch::empty({B}, torch::kFloat32);
  auto rewards = torch::empty({B}, torch::kFloat32);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto att_a = attention.accessor<int64_t, 2>();
  auto mask_a = completion_mask.accessor<float, 2>();
  auto old_a = old_logprobs.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& prompt = *rows[b].prompt;
    const auto& completion = *rows[b].completion;
    const auto& lp = *rows[b].logprobs;
    const int64_t p = static_cast<int64_t>(prompt.size());
    for (int64_t j = 0; j < p; ++j) {
      ids_a[b][P - p + j] = prompt[j];
      att_a[b][P - p + j] = 1;
    }
    for (size_t j = 0; j < completion.size(); ++j) {
      const int64_t t = P + static_cast<int64_t>(j);
      ids_a[b][t] = completion[j];
      att_a[b][t] = 1;
      mask_a[b][t - 1] = 1.0f;
      old_a[b][t - 1] = lp[j];
    }
    advantages[b] = rows[b].advantage;
    rewards[b] = rows[b].reward;
  }
  policy::PolicyBatch batch;
  batch.input_ids = ids;
  batch.attention_mask = attention;
  batch.completion_mask = completion_mask;
  batch.old_logprobs = old_logprobs;
  batch.advantages = advantages;
  batch.rewards = rewards;
  batch.validate();
  return batch;
}

}  // namespace aha::recipes
