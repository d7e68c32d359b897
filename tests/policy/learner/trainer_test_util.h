// Shared by the trainer tests: the tiny fixture model and synthetic GRPO batches drawn from a
// seeded generator (so a batch is a pure function of its seed: the "data cursor").
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <memory>

#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"

namespace aha::policy::testing {

inline const std::filesystem::path kTinyModel =
    std::filesystem::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";

// The tensors here are tiny: intra-op threads only spin against the other processes of a busy
// 2-core machine (a 30x slow-down was seen), so these tests run single-threaded.
inline void one_thread() { torch::set_num_threads(1); }

inline std::unique_ptr<Transformer> tiny_model() { return load_model(kTinyModel); }

// B rows of P prompt slots (left-padded) + C completion slots (right-padded). old_logprobs are
// the model's own log-probs at `temperature` plus noise, so ratios are not all 1.
inline PolicyBatch synthetic_batch(const Transformer& model, uint64_t seed, int64_t B = 4, int64_t P = 5,
                                   int64_t C = 6, double temperature = 1.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t T = P + C, V = model.config().vocab_size;
  PolicyBatch b;
  b.input_ids = torch::randint(3, V, {B, T}, gen, torch::kInt64);
  b.attention_mask = torch::zeros({B, T}, torch::kInt64);
  b.completion_mask = torch::zeros({B, T - 1}, torch::kFloat32);
  auto prompt_len = torch::randint(1, P + 1, {B}, gen, torch::kInt64);
  auto completion_len = torch::randint(1, C + 1, {B}, gen, torch::kInt64);
  for (int64_t i = 0; i < B; ++i) {
    const int64_t p = prompt_len[i].item<int64_t>(), c = completion_len[i].item<int64_t>();
    b.attention_mask[i].narrow(0, P - p, p + c).fill_(1);
    b.completion_mask[i].narrow(0, P - 1, c).fill_(1);
    b.input_ids[i].narrow(0, 0, P - p).fill_(0);      // left padding
    b.input_ids[i].narrow(0, P + c, C - c).fill_(0);  // right padding
  }
  {
    torch::NoGradGuard no_grad;
    auto lp = model.token_logprobs(b.input_ids, b.attention_mask, {}, temperature).detach();
    b.old_logprobs = lp + 0.05 * torch::randn({B, T - 1}, gen);
  }
  b.advantages = torch::randn({B}, gen);
  b.rewards = torch::rand({B}, gen);
  return b;
}

}  // namespace aha::policy::testing
