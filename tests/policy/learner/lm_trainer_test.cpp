// LmTrainer: the loss against hand-worked and independent computations, micro-batch
// accumulation, overfitting a small text, packing, and batch errors.
#include "policy/learner/lm_trainer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "policy/model/model_io.h"
#include "tests/policy/learner/trainer_test_util.h"
#include "tests/test_util.h"

namespace aha::policy {
namespace {

ModelConfig small_config(int64_t vocab) {
  return ModelConfig::from_json(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
      "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
      "tie_word_embeddings": true, "torch_dtype": "float32", "vocab_size": )" +
                                    std::to_string(vocab) + "}",
                                "small config");
}

LmTrainerOptions options(double lr, int64_t micro = 0) {
  LmTrainerOptions o;
  o.optimizer.lr = lr;
  o.optimizer.max_grad_norm = 1.0;
  o.micro_batch_size = micro;
  return o;
}

TEST(LmTrainer, ZeroModelLossIsLogVocabulary) {
  // All weights zero: every logit is 0, so each target has probability 1/V.
  testing::one_thread();
  auto model = init_model(small_config(50), 0);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.zero_();
  }
  auto ids = torch::randint(0, 50, {2, 9}, torch::kInt64);
  int64_t tokens = 0;
  auto nll = lm_nll_sum(*model, ids, {}, {}, &tokens);
  EXPECT_EQ(tokens, 16);
  EXPECT_NEAR(nll.item<double>() / 16, std::log(50.0), 1e-5);
}

TEST(LmTrainer, LossMatchesFullLogSoftmaxOverMaskedTargets) {
  testing::one_thread();
  auto model = testing::tiny_model();
  const int64_t V = model->config().vocab_size;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto ids = torch::randint(0, V, {3, 8}, gen, torch::kInt64);
  auto mask = torch::tensor({0, 0, 1, 1, 1, 0, 1,  //
                             1, 1, 1, 1, 1, 1, 1,  //
                             0, 0, 0, 0, 0, 0, 1},
                            torch::kInt64)
                  .view({3, 7});
  double expected = 0;
  {
    torch::NoGradGuard no_grad;
    auto logits = model->logits(model->hidden_states(ids)).to(torch::kFloat64).narrow(1, 0, 7);
    auto logp = torch::log_softmax(logits, -1).gather(2, ids.narrow(1, 1, 7).unsqueeze(2)).squeeze(2);
    expected = -(logp * mask.to(torch::kFloat64)).sum().item<double>() / 12.0;
  }
  LmTrainer trainer(std::move(model), options(1e-3));
  auto m = trainer.train_step({ids, mask, {}, {}, {}});
  EXPECT_EQ(m.tokens, 12);
  EXPECT_NEAR(m.loss, expected, 1e-5);
  EXPECT_TRUE(m.applied);
  EXPECT_GT(m.grad_norm, 0);
}

TEST(LmTrainer, MicroBatchesGiveTheWholeBatchUpdate) {
  testing::one_thread();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto ids = torch::randint(0, 64, {4, 10}, gen, torch::kInt64);
  auto mask = (torch::rand({4, 9}, gen) > 0.3).to(torch::kInt64);
  LmTrainer whole(init_model(small_config(64), 1), options(1e-2, 0));
  LmTrainer micro(init_model(small_config(64), 1), options(1e-2, 1));
  auto a = whole.train_step({ids, mask, {}, {}, {}});
  auto b = micro.train_step({ids, mask, {}, {}, {}});
  EXPECT_NEAR(a.loss, b.loss, 1e-5);
  EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4);
  auto pa = whole.model().parameters(), pb = micro.model().parameters();
  // Adam's first step moves each weight by about lr = 1e-2 (g / |g|): a wrong accumulation
  // would differ by that much; float rounding in near-zero gradients stays far below 1e-5.
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_LT((pa[i] - pb[i]).abs().max().item<double>(), 1e-5) << whole.model().named_parameters()[i].first;
}

TEST(LmTrainer, OverfitsASmallText) {
  testing::one_thread();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto ids = torch::randint(0, 40, {2, 24}, gen, torch::kInt64);
  LmTrainerOptions o = options(1e-2);
  o.optimizer.schedule.warmup_steps = 5;
  LmTrainer trainer(init_model(small_config(40), 2), o);
  double first = 0, last = 0;
  for (int step = 0; step < 80; ++step) {
    auto m = trainer.train_step({ids, {}, {}, {}, {}});
    if (step == 0) first = m.loss;
    last = m.loss;
  }
  EXPECT_NEAR(first, std::log(40.0), 0.2);  // a fresh model is close to uniform
  EXPECT_LT(last, 0.25 * first);
}

TEST(LmTrainer, BadBatchesAreErrors) {
  testing::one_thread();
  LmTrainer trainer(init_model(small_config(30), 0), options(1e-3));
  auto ids = torch::randint(0, 30, {2, 6}, torch::kInt64);
  EXPECT_NE(test::error_of([&] { trainer.train_step({ids, torch::ones({2, 6}), {}, {}, {}}); }).find("loss_mask"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { trainer.train_step({ids, torch::zeros({2, 5}), {}, {}, {}}); }).find("no token"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { trainer.train_step({ids.to(torch::kInt32), {}, {}, {}, {}}); }).find("int64"),
            std::string::npos);
}

TEST(PackDocuments, RowsStartAtDocumentStartsAndCutTheLastDocument) {
  using Rows = std::vector<std::vector<int64_t>>;
  EXPECT_EQ(pack_documents({{1, 2, 3}, {4, 5}, {6, 7, 8, 9}, {10}}, 4, 0), (Rows{{1, 2, 3, 0}, {4, 5, 0, 6}}));
  EXPECT_EQ(pack_documents({{1, 2, 3, 4, 5, 6}, {}, {7}}, 4, 0), (Rows{{1, 2, 3, 4}}));
  EXPECT_EQ(pack_documents({{1, 2}, {3}}, 6, 9), (Rows{}));  // 1 2 9 3 9: not a full row
  EXPECT_NE(test::error_of([] { pack_documents({{1}}, 1, 0); }).find("seq_len"), std::string::npos);
}

}  // namespace
}  // namespace aha::policy
