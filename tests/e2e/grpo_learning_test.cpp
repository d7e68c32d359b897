// End to end: GRPO teaches a freshly initialised tiny policy a trivially verifiable task.
// Prompt: [BOS, d] for a digit token d; the completion is one sampled token; reward 1 when it
// is (d + 1) mod 10. The policy starts near chance (1/16 over a vocabulary of 16) and must
// reach an expected reward >= 0.9 within a bounded number of steps, sampling with behaviour
// log-probs recorded at sampling time and group-relative advantages, as a real run does.
#include <gtest/gtest.h>

#include <iostream>

#include "policy/learner/advantages.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"

namespace aha::policy {
namespace {

constexpr int64_t kVocab = 16, kBos = 10, kPrompts = 10, kGroup = 8;
constexpr double kTemperature = 1.0;

ModelConfig tiny_config() {
  return ModelConfig::from_json(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
    "vocab_size": 16, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true,
    "torch_dtype": "float32", "use_sliding_window": false})",
                                "grpo_learning_test config");
}

// Last-position log-probs [N, V] for prompts [N, 2] (no padding: a full forward is enough).
torch::Tensor next_token_logprobs(const Transformer& m, const torch::Tensor& prompts) {
  auto h = m.hidden_states(prompts).select(1, prompts.size(1) - 1);
  return torch::log_softmax(m.logits(h).to(torch::kFloat32) / kTemperature, -1);
}

// Expected reward of the current policy over all ten digits.
double expected_reward(const Transformer& m) {
  torch::NoGradGuard no_grad;
  auto digits = torch::arange(10, torch::kInt64);
  auto prompts = torch::stack({torch::full({10}, kBos, torch::kInt64), digits}, 1);
  auto lp = next_token_logprobs(m, prompts);
  return lp.gather(1, ((digits + 1) % 10).unsqueeze(1)).exp().mean().item<double>();
}

// One rollout: every digit prompt kGroup times, one sampled token each.
PolicyBatch rollout(const Transformer& m, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  auto digits = torch::arange(kPrompts, torch::kInt64).repeat_interleave(kGroup);
  const int64_t N = digits.size(0);
  auto prompts = torch::stack({torch::full({N}, kBos, torch::kInt64), digits}, 1);
  auto lp = next_token_logprobs(m, prompts);
  auto tokens = torch::multinomial(lp.exp(), 1, /*replacement=*/true, gen);  // [N, 1]
  PolicyBatch b;
  b.input_ids = torch::cat({prompts, tokens}, 1);  // [N, 3]
  b.attention_mask = torch::ones({N, 3}, torch::kInt64);
  b.completion_mask = torch::tensor({0.0f, 1.0f}).repeat({N, 1});
  b.old_logprobs = torch::zeros({N, 2});
  b.old_logprobs.select(1, 1).copy_(lp.gather(1, tokens).squeeze(1));  // behaviour log-probs
  b.rewards = (tokens.squeeze(1) == (digits + 1) % 10).to(torch::kFloat32);
  b.advantages = compute_advantages(b.rewards, kGroup, {});
  return b;
}

TEST(GrpoLearning, TinyPolicyLearnsTheSuccessorDigit) {
  // Tiny tensors: intra-op threads would only spin against other processes on a busy machine.
  torch::set_num_threads(1);
  TrainerOptions o;
  o.optimizer.lr = 3e-3;
  o.optimizer.max_grad_norm = 1.0;
  o.mini_batch_size = 40;  // two optimizer steps per rollout: the second is off-policy
  o.temperature = kTemperature;
  GrpoTrainer trainer(init_model(tiny_config(), 1), o);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);

  const double start = expected_reward(trainer.policy());
  EXPECT_LT(start, 0.2);  // near chance: 1/16
  double reward = start;
  int steps = 0;
  for (; steps < 150 && reward < 0.95; ++steps) {
    auto m = trainer.train_step(rollout(trainer.policy(), gen));
    ASSERT_EQ(m.skipped_steps, 0);
    reward = expected_reward(trainer.policy());
  }
  EXPECT_GE(reward, 0.9) << "after " << steps << " steps, from " << start;
  std::cout << "expected reward " << start << " -> " << reward << " in " << steps << " steps\n";
  // The sampled rewards agree with the expectation.
  auto final_batch = rollout(trainer.policy(), gen);
  EXPECT_GE(final_batch.rewards.mean().item<double>(), 0.8);
}

}  // namespace
}  // namespace aha::policy
