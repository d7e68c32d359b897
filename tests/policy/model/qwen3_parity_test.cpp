// Parity of Qwen3 and Qwen3-MoE with Hugging Face transformers: logits, log-probs, gradients of
// the summed log-probs and the MoE auxiliary loss of tiny random models, against the outputs
// tests/fixtures/make_qwen3_fixtures.py recorded (transformers 5.24); plus the KV-cached forward
// against the full one, and save/reload in the hub layout.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/files.h"
#include "policy/model/model_io.h"
#include "policy/model/moe_routing.h"
#include "policy/model/safetensors.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

std::vector<std::string> dense() { return {"qwen3_gqa_headdim", "qwen3_bias_mha_untied"}; }
std::vector<std::string> moe() { return {"qwen3_moe_top2_norm", "qwen3_moe_top1_sparse2", "qwen3_moe_mlponly_mqa"}; }
std::vector<std::string> all() {
  auto a = dense();
  for (auto& m : moe()) a.push_back(m);
  return a;
}

double max_diff_on(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& where) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().index({where.to(torch::kBool)}).max().item<double>();
}

struct Inputs {
  torch::Tensor ids, mask, pos;
};

class Qwen3Parity : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir() const { return kFixtures / GetParam(); }
  aha::SafetensorsFile expected() const { return aha::SafetensorsFile(dir() / "expected.safetensors"); }
  static Inputs inputs(const aha::SafetensorsFile& e) {
    return {e.load("input_ids"), e.load("attention_mask"), e.load("position_ids")};
  }
};

TEST_P(Qwen3Parity, ConfigIsTheFamilyItClaims) {
  auto c = aha::ModelConfig::from_file(dir() / "config.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.is_moe(), GetParam().find("moe") != std::string::npos);
}

TEST_P(Qwen3Parity, Float32LogitsMatchTransformers) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto logits = model->logits(model->hidden_states(in.ids, in.mask, in.pos));
  EXPECT_LE(max_diff_on(logits, e.load("logits_fp32"), in.mask), 1e-4);
}

TEST_P(Qwen3Parity, BFloat16LogitsMatchTransformers) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir(), {torch::kCPU, torch::kBFloat16});
  torch::NoGradGuard no_grad;
  auto logits = model->logits(model->hidden_states(in.ids, in.mask, in.pos));
  // As tests/policy/model/model_parity_test.cpp: within 2% of the logits' range of transformers'
  // bf16 logits.
  const double range = e.load("logits_fp32").abs().max().item<double>();
  EXPECT_LE(max_diff_on(logits, e.load("logits_bf16"), in.mask), 0.02 * range);
}

TEST_P(Qwen3Parity, TokenLogprobsEqualLogSoftmaxOfReferenceLogits) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto ours = model->token_logprobs(in.ids, in.mask, in.pos);
  const int64_t T = in.ids.size(1);
  auto ref = torch::log_softmax(e.load("logits_fp32").to(torch::kFloat64).narrow(1, 0, T - 1), -1)
                 .gather(2, in.ids.narrow(1, 1, T - 1).unsqueeze(2))
                 .squeeze(2);
  auto real = in.mask.narrow(1, 1, T - 1).logical_and(in.mask.narrow(1, 0, T - 1));
  EXPECT_LE(max_diff_on(ours, ref, real), 1e-4);
}

// d(sum of the real tokens' log-probs)/d(every parameter) against transformers' autograd. aha's
// parameter names are transformers' (experts stacked as in transformers 5).
TEST_P(Qwen3Parity, GradientsMatchTransformersAutograd) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir());
  for (auto& p : model->parameters()) p.requires_grad_(true);
  const int64_t T = in.ids.size(1);
  auto real = in.mask.narrow(1, 1, T - 1).mul(in.mask.narrow(1, 0, T - 1)).to(torch::kFloat32);
  (model->token_logprobs(in.ids, in.mask, in.pos) * real).sum().backward();
  int checked = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    auto ref = e.load("grad_" + name);
    ASSERT_TRUE(p.grad().defined()) << name;
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LE((p.grad() - ref).abs().max().item<double>(), 1e-4 * scale) << name;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(model->named_parameters().size()));
}

TEST_P(Qwen3Parity, KvCachedDecodeMatchesFullForward) {
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  for (bool fused : {false, true}) {
    const int64_t P = 6, steps = 4, cap = P + steps, B = 2;
    auto prompt_mask = torch::ones({B, P}, torch::kInt64);
    prompt_mask[1].narrow(0, 0, 3).zero_();  // row 1 left-padded
    auto ids = torch::randint(3, 64, {B, cap}, torch::kInt64);
    ids.narrow(1, 0, P).mul_(prompt_mask);
    auto full_mask = torch::cat({prompt_mask, torch::ones({B, steps}, torch::kInt64)}, 1);
    auto expected = model->logits(model->hidden_states(ids, full_mask));
    auto cache = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCPU);
    aha::FusedProjections copies;
    if (fused) copies = model->fuse_projections();
    auto key_mask = torch::zeros({B, cap}, torch::kBool);
    key_mask.narrow(1, 0, P).copy_(prompt_mask.to(torch::kBool));
    auto h = model->hidden_states_cached(ids.narrow(1, 0, P), aha::positions_from_mask(prompt_mask),
                                         torch::arange(P, torch::kInt64), key_mask.narrow(1, 0, P), cache,
                                         fused ? &copies : nullptr);
    EXPECT_LE(max_diff_on(model->logits(h), expected.narrow(1, 0, P), prompt_mask), 1e-4) << "fused " << fused;
    auto next = torch::tensor({P, P - 3}, torch::kInt64);
    for (int64_t t = 0; t < steps; ++t) {
      key_mask.select(1, P + t).fill_(true);
      auto step = model->hidden_states_cached(ids.narrow(1, P + t, 1), (next + t).view({B, 1}),
                                              torch::tensor({P + t}, torch::kInt64), key_mask, cache,
                                              fused ? &copies : nullptr);
      EXPECT_LE((model->logits(step).squeeze(1) - expected.select(1, P + t)).abs().max().item<double>(), 1e-4)
          << "fused " << fused << " step " << t;
    }
  }
}

TEST_P(Qwen3Parity, SavesInTheHubLayoutAndReloadsIdentically) {
  auto model = aha::load_model(dir());
  auto out = fs::temp_directory_path() / ("aha_qwen3_" + GetParam() + std::to_string(::getpid()));
  aha::save_model(*model, out);
  aha::CheckpointReader saved(out), original(dir());
  // The same tensor names as transformers' save_pretrained wrote, with the same values.
  auto saved_names = saved.names(), original_names = original.names();
  std::set<std::string> a(saved_names.begin(), saved_names.end()), b(original_names.begin(), original_names.end());
  EXPECT_EQ(a, b);
  for (const auto& name : b) EXPECT_TRUE(torch::equal(saved.load(name), original.load(name))) << name;
  auto reloaded = aha::load_model(out);
  auto e = expected();
  auto in = inputs(e);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->logits(model->hidden_states(in.ids, in.mask, in.pos)),
                           reloaded->logits(reloaded->hidden_states(in.ids, in.mask, in.pos))));
  aha::remove_tree(out);
}

// On the GPU (skipped where there is none): float32 and bf16 logits as on the CPU, and the
// cached bf16 decode with fused projections, where the decode kernels must step aside (they
// have no q/k norms or experts) and the LibTorch path must agree with the full bf16 forward.
TEST_P(Qwen3Parity, CudaLogitsAndCachedDecodeMatch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto e = expected();
  auto in = inputs(e);
  torch::NoGradGuard no_grad;
  auto fp32 = e.load("logits_fp32");
  auto model = aha::load_model(dir(), {torch::kCUDA, torch::kFloat32});
  EXPECT_LE(max_diff_on(model->logits(model->hidden_states(in.ids, in.mask, in.pos)).cpu(), fp32, in.mask), 1e-4);
  auto bf16 = aha::load_model(dir(), {torch::kCUDA, torch::kBFloat16});
  const double range = fp32.abs().max().item<double>();
  auto logits16 = bf16->logits(bf16->hidden_states(in.ids, in.mask, in.pos)).cpu();
  EXPECT_LE(max_diff_on(logits16, e.load("logits_bf16"), in.mask), 0.02 * range);
  // One decode step after a prefill of the first row's real tokens, fused projections on.
  const int64_t T = in.ids.size(1);
  auto ids = in.ids.narrow(0, 0, 1).to(torch::kCUDA);
  auto cache = aha::KVCache::allocate(bf16->config(), 1, T, torch::kBFloat16, torch::kCUDA);
  auto fused = bf16->fuse_projections();
  auto keys = torch::ones({1, T}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
  auto positions = torch::arange(T, ids.options()).view({1, T});
  bf16->hidden_states_cached(ids.narrow(1, 0, T - 1), positions.narrow(1, 0, T - 1),
                             torch::arange(T - 1, ids.options()), keys.narrow(1, 0, T - 1), cache, &fused);
  auto last = bf16->hidden_states_cached(ids.narrow(1, T - 1, 1), positions.narrow(1, T - 1, 1),
                                         torch::full({1}, T - 1, ids.options()), keys, cache, &fused);
  auto step = bf16->logits(last).cpu().to(torch::kFloat32).view({-1});
  EXPECT_LE((step - logits16[0][T - 1].to(torch::kFloat32)).abs().max().item<double>(), 0.02 * range);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen3Parity, ::testing::ValuesIn(all()));

class Qwen3MoeParity : public Qwen3Parity {};

// The auxiliary load-balancing loss over the real tokens, and its gradient in the routers.
TEST_P(Qwen3MoeParity, AuxLossMatchesTransformers) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir());
  const auto& c = model->config();
  ASSERT_GT(e.load("routing_margin").item<double>(), 1e-3) << "the fixture's routing is near a tie";
  for (auto& p : model->parameters()) p.requires_grad_(true);
  std::vector<torch::Tensor> router_logits;
  model->hidden_states(in.ids, in.mask, in.pos, {}, &router_logits);
  EXPECT_EQ(static_cast<int64_t>(router_logits.size()), c.moe_layer_count());
  auto aux = aha::load_balancing_loss(router_logits, c.num_experts, c.num_experts_per_tok, in.mask);
  EXPECT_NEAR(aux.item<double>(), e.load("aux_loss").item<double>(), 1e-5);
  aux.backward();
  int routers = 0;
  for (const auto& [name, p] : model->named_parameters()) {
    if (name.find("mlp.gate.weight") == std::string::npos) continue;
    EXPECT_LE((p.grad() - e.load("aux_grad_" + name)).abs().max().item<double>(), 1e-5) << name;
    ++routers;
  }
  EXPECT_EQ(routers, c.moe_layer_count());
  // The load figure lies between balanced (1) and every token on the same k experts (E / k).
  const double load = aha::expert_load_max(router_logits, c.num_experts, c.num_experts_per_tok, in.mask);
  EXPECT_GE(load, 1.0);
  EXPECT_LE(load, double(c.num_experts) / double(c.num_experts_per_tok) + 1e-9);
}

// transformers 5's stacked parameter names are read as well as the hub's per-expert ones.
TEST_P(Qwen3MoeParity, LoadsTheStackedExpertLayout) {
  auto model = aha::load_model(dir());
  auto out = fs::temp_directory_path() / ("aha_qwen3_fused_" + GetParam() + std::to_string(::getpid()));
  fs::create_directories(out);
  fs::copy_file(dir() / "config.json", out / "config.json");
  aha::save_checkpoint_tensors(out, model->checkpoint_tensors(/*fused_experts=*/true), 5ull << 30);
  aha::SafetensorsFile stacked(out / "model.safetensors");
  EXPECT_TRUE(stacked.find("model.layers.1.mlp.experts.gate_up_proj"));
  auto reloaded = aha::load_model(out);
  auto a = model->named_parameters(), b = reloaded->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  aha::remove_tree(out);
}

// Recomputing MoE layers in backward routes the same tokens to the same experts: the gradients
// equal transformers' as without checkpointing, and so do the auxiliary loss and its router
// gradients taken from the recomputed layers' router logits.
TEST_P(Qwen3MoeParity, ActivationCheckpointingKeepsTheGradients) {
  auto e = expected();
  auto in = inputs(e);
  auto model = aha::load_model(dir());
  model->set_activation_checkpointing(true);
  for (auto& p : model->parameters()) p.requires_grad_(true);
  const int64_t T = in.ids.size(1);
  auto real = in.mask.narrow(1, 1, T - 1).mul(in.mask.narrow(1, 0, T - 1)).to(torch::kFloat32);
  (model->token_logprobs(in.ids, in.mask, in.pos) * real).sum().backward();
  for (const auto& [name, p] : model->named_parameters()) {
    auto ref = e.load("grad_" + name);
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LE((p.grad() - ref).abs().max().item<double>(), 1e-4 * scale) << name;
  }
  const auto& c = model->config();
  for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  std::vector<torch::Tensor> router_logits;
  model->hidden_states(in.ids, in.mask, in.pos, {}, &router_logits);
  ASSERT_EQ(static_cast<int64_t>(router_logits.size()), c.moe_layer_count());
  auto aux = aha::load_balancing_loss(router_logits, c.num_experts, c.num_experts_per_tok, in.mask);
  EXPECT_NEAR(aux.item<double>(), e.load("aux_loss").item<double>(), 1e-5);
  aux.backward();
  for (const auto& [name, p] : model->named_parameters())
    if (name.find("mlp.gate.weight") != std::string::npos) {
      ASSERT_TRUE(p.grad().defined()) << name;
      EXPECT_LE((p.grad() - e.load("aux_grad_" + name)).abs().max().item<double>(), 1e-5) << name;
    }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen3MoeParity, ::testing::ValuesIn(moe()));

}  // namespace
