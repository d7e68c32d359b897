// Packed GRPO micro-batches (grpo_packing.h): the layout of a hand-made batch, refusals of
// batches that cannot be packed, and the trainer on packed micro-batches against the padded
// path: the same reference log-probs, loss, metrics and gradients for every aggregation, GSPO,
// dual-clip, the entropy bonus and the KL term (CPU, float32). On CUDA (skipped elsewhere): the
// variable-length attention kernel against the block-diagonal mask, forward and gradient.
#include "policy/learner/grpo_packing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "trainer_test_util.h"

namespace aha::policy {
namespace {

using testing::synthetic_batch;
using testing::tiny_model;

// Rows of T = 6: row 0 real at [1, 4), row 1 at [0, 5), row 2 at [2, 4).
PolicyBatch hand_batch() {
  PolicyBatch b;
  b.input_ids = torch::arange(100, 118, torch::kInt64).view({3, 6});
  b.attention_mask = torch::tensor({0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0}, torch::kInt64).view({3, 6});
  b.completion_mask = torch::zeros({3, 5});
  b.completion_mask[0].narrow(0, 1, 2).fill_(1);  // targets 2, 3 (predicted from columns 1, 2)
  b.completion_mask[1].narrow(0, 2, 2).fill_(1);
  b.completion_mask[2][2] = 1;
  b.old_logprobs = -torch::rand({3, 5});
  b.advantages = torch::tensor({1.0, -1.0, 0.5});
  return b;
}

std::vector<int64_t> values(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kInt64).contiguous().reshape({-1});
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(GrpoPacking, HandBatchLayout) {
  // Longest sequence 5 = the row width. First-fit by decreasing length: row 1 alone, then rows
  // 0 and 2 together. A budget of 10 slots holds both packed rows.
  auto packs = pack_micro_batches(hand_batch(), 10, torch::kCPU);
  ASSERT_EQ(packs.size(), 1u);
  const auto& p = packs[0];
  EXPECT_EQ(p.rows, (std::vector<int64_t>{1, 0, 2}));
  EXPECT_EQ(p.real_tokens, 10);
  EXPECT_EQ(values(p.input_ids), (std::vector<int64_t>{106, 107, 108, 109, 110, 101, 102, 103, 114, 115}));
  EXPECT_EQ(values(p.positions), (std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 0, 1}));
  EXPECT_EQ(values(p.segment_ids), (std::vector<int64_t>{1, 1, 1, 1, 1, 1, 1, 1, 2, 2}));
  // Column 2 of the second row predicts row 2's first token from row 0's last: no target.
  EXPECT_EQ(values(p.sequence_index), (std::vector<int64_t>{0, 0, 0, 0, 1, 1, -1, 2}));
  EXPECT_EQ(values(p.target_source), (std::vector<int64_t>{5, 6, 7, 8, 1, 2, -1, 12}));
  auto padded = torch::arange(1, 16, torch::kFloat32).view({3, 5});
  auto packed = p.gather(padded);
  EXPECT_TRUE(torch::equal(packed, torch::tensor({6.f, 7.f, 8.f, 9.f, 2.f, 3.f, 0.f, 13.f}).view({2, 4})));
  auto back = torch::zeros({3, 5});
  p.scatter_into(back, packed);
  auto mapped = torch::zeros({3, 5}, torch::kBool);
  for (int64_t s : {5, 6, 7, 8, 1, 2, 12}) mapped.view({-1})[s] = true;
  EXPECT_TRUE(torch::equal(back, torch::where(mapped, padded, torch::zeros({}))));
  // The completion mask moves with its targets: 5 completion tokens, none lost.
  EXPECT_EQ(p.gather(hand_batch().completion_mask).sum().item<double>(), 5.0);

  // Five slots per micro-batch: one packed row each.
  auto split = pack_micro_batches(hand_batch(), 5, torch::kCPU);
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(split[0].rows, (std::vector<int64_t>{1}));
  EXPECT_EQ(split[1].rows, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(values(split[1].sequence_index), (std::vector<int64_t>{0, 0, -1, 1}));
  // A budget below the longest sequence still gives every row a micro-batch.
  EXPECT_EQ(pack_micro_batches(hand_batch(), 2, torch::kCPU).size(), 2u);
}

TEST(GrpoPacking, RefusesBatchesItCannotPack) {
  auto holes = hand_batch();
  holes.attention_mask[1][2] = 0;
  try {
    pack_micro_batches(holes, 10, torch::kCPU);
    FAIL() << "a row with a hole was packed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
  auto stray = hand_batch();
  stray.completion_mask[0][0] = 1;  // target 1 predicted from the padding at column 0
  try {
    pack_micro_batches(stray, 10, torch::kCPU);
    FAIL() << "a completion target outside its sequence was packed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pack_micro_batches(hand_batch(), 1, torch::kCPU), Error);
  TrainerOptions both;
  both.micro_batch_size = 2;
  both.micro_batch_tokens = 64;
  EXPECT_THROW(validate(both), Error);
}

std::vector<torch::Tensor> take_grads(Transformer& m) {
  std::vector<torch::Tensor> g;
  for (auto& p : m.parameters()) {
    g.push_back(p.grad().clone());
    p.mutable_grad() = torch::Tensor();
  }
  return g;
}

struct Variant {
  const char* name;
  LossAggregation aggregation;
  bool gspo, dual_clip, entropy;
  bool checkpointing = false;  // the packed trainer recomputes its layers in backward
};

TEST(GrpoPacking, PackedEqualsPaddedForEveryAggregation) {
  testing::one_thread();
  const Variant variants[] = {
      {"token_mean", LossAggregation::token_mean, false, false, true},
      {"seq_mean_token_mean", LossAggregation::seq_mean_token_mean, false, true, false},
      {"seq_sum_const_len, activation checkpointing", LossAggregation::seq_sum_const_len, false, false, false, true},
      {"gspo seq_mean_token_mean", LossAggregation::seq_mean_token_mean, true, false, false},
  };
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    TrainerOptions o;
    o.loss.aggregation = v.aggregation;
    o.loss.const_length = 6;
    o.loss.sequence_ratio = v.gspo;
    if (v.dual_clip) o.loss.dual_clip_c = 1.5;
    o.loss.entropy_coef = v.entropy ? 0.01 : 0.0;
    o.loss.beta = 0.05;  // KL to a reference that differs from the policy
    o.loss.clip_eps_high = 0.28;
    o.temperature = 0.8;
    o.optimizer.lr = 1e-3;
    o.mini_batch_size = 4;
    o.micro_batch_size = 3;
    GrpoTrainer padded(tiny_model(), o);
    o.micro_batch_size = 0;
    o.micro_batch_tokens = 16;  // rows of the longest sequence (<= 11), one per micro-batch
    o.activation_checkpointing = v.checkpointing;
    GrpoTrainer packed(tiny_model(), o);
    for (auto* t : {&padded, &packed}) {
      torch::NoGradGuard no_grad;
      auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
      for (auto& p : t->reference()->parameters()) p.add_(0.05 * torch::randn(p.sizes(), gen));
    }
    auto batch = synthetic_batch(padded.policy(), 21, 8, 5, 6, o.temperature);
    auto noise = at::make_generator<at::CPUGeneratorImpl>(7);
    batch.old_logprobs = batch.old_logprobs + 0.3 * torch::randn(batch.old_logprobs.sizes(), noise);  // clip some ratios
    ASSERT_GT(pack_micro_batches(batch, 16, torch::kCPU).size(), 2u);  // several packed micro-batches

    auto ref_a = padded.reference_logprobs(batch), ref_b = packed.reference_logprobs(batch);
    auto real = batch.completion_mask.to(torch::kBool);
    EXPECT_LE((ref_a - ref_b).masked_select(real).abs().max().item<double>(), 1e-6);
    // The policy's own log-probs (asynchronous GRPO's proximal policy) packed are the policy's,
    // not the reference's (the packed path once ran the reference model for them).
    auto own_a = padded.policy_logprobs(batch), own_b = packed.policy_logprobs(batch);
    EXPECT_LE((own_a - own_b).masked_select(real).abs().max().item<double>(), 1e-6);
    EXPECT_GT((own_b - ref_b).masked_select(real).abs().max().item<double>(), 1e-3);

    auto a = padded.accumulate_gradients(batch, ref_a);
    auto b = packed.accumulate_gradients(batch, ref_b);
    EXPECT_NEAR(a.loss, b.loss, 1e-6);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.sequences, b.sequences);
    // A ratio is exp of log-prob differences, each within 1e-6 above: relative 1e-6 plus rounding
    // (GSPO's sequence ratio over 1 missed an absolute 1e-6 by 8 float32 ulps on an AMD EPYC).
    EXPECT_NEAR(a.ratio_max, b.ratio_max, 2e-6 * std::max(1.0, std::abs(b.ratio_max)));
    EXPECT_NEAR(a.ratio_min, b.ratio_min, 2e-6 * std::max(1.0, std::abs(b.ratio_min)));
    ASSERT_EQ(a.weighted.size(), b.weighted.size());
    for (size_t i = 0; i < a.weighted.size(); ++i) {
      EXPECT_EQ(a.weighted[i].first, b.weighted[i].first);
      EXPECT_NEAR(a.weighted[i].second, b.weighted[i].second, 1e-5) << a.weighted[i].first;
    }
    auto ga = take_grads(padded.policy()), gb = take_grads(packed.policy());
    double largest = 0;
    for (size_t i = 0; i < ga.size(); ++i) {
      largest = std::max(largest, ga[i].abs().max().item<double>());
      EXPECT_LE((ga[i] - gb[i]).abs().max().item<double>(), 1e-6) << "parameter " << i;
    }
    EXPECT_GT(largest, 1e-3);  // the gradients compared are not all zero

    // Whole steps (two mini-batches each, the second after an AdamW update) agree too, to float32
    // precision relative to the values.
    auto ma = padded.train_step(batch), mb = packed.train_step(batch);
    auto relative = [](double x) { return 1e-6 * std::max(1.0, std::abs(x)); };
    EXPECT_NEAR(ma.loss, mb.loss, relative(ma.loss));
    EXPECT_NEAR(ma.grad_norm, mb.grad_norm, 1e-5 * std::max(1.0, ma.grad_norm));
    // The KL moved by 1.2e-6 relative on one variant once the LM head ran on the scored rows
    // only (products of other shapes round differently; AdamW's first step, about lr x sign(g),
    // turns a rounding-sized gradient into a whole lr-sized update).
    EXPECT_NEAR(ma.kl_loss, mb.kl_loss, 4 * relative(ma.kl_loss));
    EXPECT_EQ(ma.optimizer_steps, mb.optimizer_steps);
  }
}

// A mixture-of-experts policy: the router sees only real tokens (segment ids mark them), the
// policy-loss gradient equals the padded path's, and the auxiliary loss (a per-micro-batch
// quantity, so not equal) is finite and enters the loss.
TEST(GrpoPacking, MixtureOfExpertsPolicyTrainsPacked) {
  testing::one_thread();
  const auto moe = std::filesystem::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen3_moe_top2_norm";
  TrainerOptions o;
  o.micro_batch_size = 2;
  GrpoTrainer padded(load_model(moe), o);
  o.micro_batch_size = 0;
  o.micro_batch_tokens = 24;
  GrpoTrainer packed(load_model(moe), o);
  auto batch = synthetic_batch(padded.policy(), 41, 6);
  auto a = padded.accumulate_gradients(batch, {});
  auto b = packed.accumulate_gradients(batch, {});
  EXPECT_TRUE(b.moe);
  EXPECT_NEAR(a.loss, b.loss, 1e-6);
  auto ga = take_grads(padded.policy()), gb = take_grads(packed.policy());
  for (size_t i = 0; i < ga.size(); ++i)
    EXPECT_LE((ga[i] - gb[i]).abs().max().item<double>(), 1e-6) << "parameter " << i;
  EXPECT_TRUE(std::isfinite(b.aux_loss));
  EXPECT_GT(b.aux_loss, 0.0);
  EXPECT_GE(b.expert_load_max, 1.0);
  o.router_aux_loss_coef = 0.01;
  GrpoTrainer with_aux(load_model(moe), o);
  auto c = with_aux.accumulate_gradients(batch, {});
  EXPECT_NEAR(c.loss, b.loss + 0.01 * b.aux_loss, 1e-6);
}

double cosine(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  auto flat = [](const std::vector<torch::Tensor>& g) {
    std::vector<torch::Tensor> f;
    for (auto& t : g) f.push_back(t.to(torch::kFloat64).flatten().cpu());
    return torch::cat(f);
  };
  auto fa = flat(a), fb = flat(b);
  return (fa * fb).sum().item<double>() / (fa.norm().item<double>() * fb.norm().item<double>());
}

// CUDA only: the packed trainer with the variable-length flash kernel against the same trainer
// forced onto the block-diagonal mask, in pure bf16 and under autocast over float32 weights, for
// a dense model, a Qwen3-MoE and two DeepSeek-V3 (MLA: query/key and value head sizes differ,
// so the kernel sees both zero-padded; value narrower than query/key in one, nearly as wide in
// the other).
TEST(GrpoPacking, CudaVarlenAttentionEqualsMaskPath) {
  testing::one_thread();
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto fixtures = std::filesystem::path(AHA_SOURCE_DIR) / "tests/fixtures/models";
  for (const auto& dir : {testing::kTinyModel, fixtures / "qwen3_moe_top2_norm", fixtures / "deepseek_v3_qlora_groups",
                          fixtures / "deepseek_v3_plainq_top1_yarn"}) {
    SCOPED_TRACE(dir.filename().string());
    auto batch = synthetic_batch(*load_model(dir), 31, 8, 5, 6);
    for (bool autocast : {false, true}) {
      SCOPED_TRACE(autocast ? "autocast" : "bf16");
      TrainerOptions o;
      o.loss.beta = 0.05;
      o.micro_batch_tokens = 24;
      o.autocast_bf16 = autocast;
      const LoadOptions load{torch::kCUDA, autocast ? torch::kFloat32 : torch::kBFloat16};
      GrpoTrainer varlen(load_model(dir, load), o);
      GrpoTrainer masked(load_model(dir, load), o);
      masked.policy().set_varlen_attention(false);
      masked.reference()->set_varlen_attention(false);
      ASSERT_TRUE(varlen.policy().varlen_attention());
      auto ref_v = varlen.reference_logprobs(batch), ref_m = masked.reference_logprobs(batch);
      auto real = batch.completion_mask.to(torch::kBool).cuda();
      EXPECT_LE((ref_v - ref_m).masked_select(real).abs().max().item<double>(), 0.05);
      auto a = varlen.accumulate_gradients(batch, ref_v);
      auto b = masked.accumulate_gradients(batch, ref_m);
      EXPECT_NEAR(a.loss, b.loss, 2e-2 * std::max(1.0, std::abs(b.loss)));
      auto ga = take_grads(varlen.policy()), gb = take_grads(masked.policy());
      EXPECT_GT(cosine(ga, gb), 0.995);
      for (auto& g : ga) EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
    }
  }
}

}  // namespace
}  // namespace aha::policy
