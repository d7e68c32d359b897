// The routing-bias update of the GRPO learner on the tiny DeepSeek-V3 shape
// (recipes/models/tiny-deepseek-v3.json): frozen by default (bit for bit), DeepSeek's sign rule
// for a load made known by hand (gate weights zeroed, so the bias alone chooses the experts),
// and the moved bias carried by checkpoints, the reference copy and the HF output.
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"
#include "core/files.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/learner/routing_bias.h"
#include "policy/model/model_io.h"
#include "policy/model/moe_routing.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Transformer> tiny_deepseek(uint64_t seed = 5) {
  return init_model(ModelConfig::from_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/tiny-deepseek-v3.json"), seed);
}

std::vector<torch::Tensor> biases(const Transformer& m) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, b] : m.named_buffers()) out.push_back(b.clone());
  return out;
}

TrainerOptions options(double rate, double lr) {
  TrainerOptions o;
  o.optimizer.lr = lr;
  o.routing_bias_update_rate = rate;
  return o;
}

TEST(RoutingBias, FrozenByDefaultBitForBit) {
  testing::one_thread();
  auto model = tiny_deepseek();
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, b] : model->named_buffers()) b.copy_(torch::randn({b.size(0)}) * 0.01);
  }
  const auto before = biases(*model);
  ASSERT_EQ(before.size(), 2u);  // layers 1 and 2 (first_k_dense_replace 1)
  GrpoTrainer trainer(std::move(model), options(0.0, 1e-2));
  const auto weight_before = trainer.policy().named_parameters()[1].second.clone();
  auto metrics = trainer.train_step(testing::synthetic_batch(trainer.policy(), 3));
  ASSERT_EQ(metrics.skipped_steps, 0);
  EXPECT_FALSE(torch::equal(weight_before, trainer.policy().named_parameters()[1].second)) << "the step trained";
  const auto after = biases(trainer.policy());
  for (size_t l = 0; l < after.size(); ++l) EXPECT_TRUE(torch::equal(before[l], after[l])) << "layer " << l;
}

// With activation checkpointing the loads come from the recomputed layers' router logits.
void sign_rule_on_a_known_load(bool activation_checkpointing) {
  testing::one_thread();
  auto model = tiny_deepseek();
  // Zero gates: every score is sigmoid(0) = 0.5, so the bias alone chooses. 8 experts in 2
  // groups of 4, topk_group 1, top 2. Layer 1's bias prefers group 0 and in it experts 0 and 1;
  // layer 2's group 1 and experts 5 and 6. Every real token of every layer therefore goes to
  // those two experts: their load is the token count n, the others' 0, the mean 2n / 8 = n / 4.
  // The rule: bias_e += r x sign(n / 4 - load_e): -r for the two chosen experts, +r for the six others.
  const std::vector<std::vector<float>> start = {{0.30f, 0.20f, 0.10f, 0.00f, -0.10f, -0.20f, -0.30f, -0.40f},
                                                 {-0.40f, -0.30f, -0.20f, -0.10f, 0.00f, 0.25f, 0.20f, 0.10f}};
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : model->named_parameters())
      if (name.find("mlp.gate.weight") != std::string::npos) p.zero_();
    auto buffers = model->named_buffers();
    for (size_t l = 0; l < buffers.size(); ++l) buffers[l].second.copy_(torch::tensor(start[l]));
  }
  const double r = 0.001;
  auto batch = testing::synthetic_batch(*model, 4, /*B=*/4);
  const int64_t real_tokens = batch.attention_mask.sum().item<int64_t>();
  // The loads as the learner counts them: T rows per row of the batch, padding left out.
  {
    std::vector<torch::Tensor> logits;
    torch::NoGradGuard no_grad;
    model->hidden_states(batch.input_ids, batch.attention_mask, {}, {}, &logits);
    auto loads = deepseek_expert_loads(*model, logits, batch.attention_mask);
    auto expected = torch::zeros({2, 8}, torch::kFloat64);
    expected.index_put_({0, 0}, real_tokens);
    expected.index_put_({0, 1}, real_tokens);
    expected.index_put_({1, 5}, real_tokens);
    expected.index_put_({1, 6}, real_tokens);
    EXPECT_TRUE(torch::equal(loads, expected)) << loads;
  }
  auto o = options(r, 0.0);
  o.micro_batch_size = 2;  // the loads of both micro-batches make the step's
  o.activation_checkpointing = activation_checkpointing;
  GrpoTrainer trainer(std::move(model), o);
  auto metrics = trainer.train_step(batch);
  ASSERT_EQ(metrics.optimizer_steps, 1);
  ASSERT_EQ(metrics.skipped_steps, 0);
  const std::vector<std::vector<float>> sign = {{-1, -1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, -1, -1, 1}};
  const auto after = biases(trainer.policy());
  for (size_t l = 0; l < 2; ++l) {
    // In float32, as the buffer is: start + float(r) x sign.
    auto expected = torch::tensor(start[l]) + torch::tensor(sign[l]) * torch::tensor(float(r));
    EXPECT_TRUE(torch::equal(after[l], expected)) << "layer " << l << ": " << after[l] << " vs " << expected;
  }

  // The moved bias is the model's: the HF output holds it, and copies (reference, resume) take it.
  const fs::path dir = fs::temp_directory_path() / ("aha_routing_bias_" + std::to_string(::getpid()));
  save_model(trainer.policy(), dir);
  auto reloaded = load_model(dir);
  const auto saved = biases(*reloaded);
  for (size_t l = 0; l < 2; ++l) EXPECT_TRUE(torch::equal(saved[l], after[l])) << "layer " << l;
  auto copy = tiny_deepseek(9);
  copy_weights(trainer.policy(), *copy);
  const auto copied = biases(*copy);
  for (size_t l = 0; l < 2; ++l) EXPECT_TRUE(torch::equal(copied[l], after[l])) << "layer " << l;
  remove_tree(dir);
}

TEST(RoutingBias, SignRuleOnAKnownLoad) { sign_rule_on_a_known_load(false); }
TEST(RoutingBias, SignRuleOnAKnownLoadWithActivationCheckpointing) { sign_rule_on_a_known_load(true); }

// moe/expert_load_max for DeepSeek-V3 counts the experts its gate chose. A bias of 10 on experts
// 0 and 1 (layer 1) and 5 and 6 (layer 2) outweighs any sigmoid score, so every token goes to
// those two: the busiest expert has half of the assignments, 0.5 x 8 experts = 4 exactly. Softmax
// top-k of the (random) logits, the Qwen3 figure, would spread them and say less.
TEST(RoutingBias, ExpertLoadMaxCountsTheGatesOwnChoice) {
  testing::one_thread();
  auto model = tiny_deepseek();
  {
    torch::NoGradGuard no_grad;
    auto buffers = model->named_buffers();
    buffers[0].second.zero_().index_put_({torch::tensor({0, 1})}, 10.0);
    buffers[1].second.zero_().index_put_({torch::tensor({5, 6})}, 10.0);
  }
  auto batch = testing::synthetic_batch(*model, 8, /*B=*/4);
  {
    std::vector<torch::Tensor> logits;
    torch::NoGradGuard no_grad;
    model->hidden_states(batch.input_ids, batch.attention_mask, {}, {}, &logits);
    const auto& c = model->config();
    EXPECT_LT(expert_load_max(logits, c.num_experts, c.num_experts_per_tok, batch.attention_mask), 4.0);
  }
  GrpoTrainer trainer(std::move(model), options(0.0, 0.0));
  auto metrics = trainer.train_step(batch);
  ASSERT_TRUE(metrics.has_moe);
  EXPECT_EQ(metrics.moe_expert_load_max, 4.0);
}

TEST(RoutingBias, OptionChecks) {
  testing::one_thread();
  EXPECT_THROW(validate(options(-0.1, 0)), Error);
  EXPECT_THROW(validate(options(std::nan(""), 0)), Error);
  // A policy without a routing bias (Qwen2) cannot have it updated.
  try {
    GrpoTrainer dense(testing::tiny_model(), options(0.001, 0));
    FAIL() << "a dense policy took routing_bias_update_rate";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("routing_bias_update_rate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aha::policy
