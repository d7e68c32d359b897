// DeepSeek-V3 (MLA + DeepSeekMoE) against transformers: tiny random models made by
// tests/fixtures/make_deepseek_v3_fixtures.py (transformers 5.24): logits and token log-probs,
// decoding from the compressed latent cache against teacher forcing, save/reload, the ignored
// multi-token-prediction layer; and config.json parsing (errors name the key), parameter
// counts against transformers' own model (the 671B public config included).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

std::vector<std::string> fixture_names() {
  return {"deepseek_v3_qlora_groups", "deepseek_v3_plainq_top1_yarn", "deepseek_v3_dense_bias", "deepseek_v3_mtp"};
}

double max_diff_on_real_tokens(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto real = mask.to(torch::kBool);
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().index({real}).max().item<double>();
}

// Backward of the real tokens' log-probs through `model` (on any device): every parameter
// gradient transformers recorded is within tolerance x max(1, its largest value), and at least
// layer 0's attention and the last feed-forward were compared.
void expect_gradients_match(aha::Transformer& model, aha::SafetensorsFile& expected, const torch::Tensor& ids,
                            const torch::Tensor& mask, const torch::Tensor& pos, double tolerance,
                            const std::string& label) {
  for (auto& p : model.parameters()) p.requires_grad_(true);
  const int64_t T = ids.size(1);
  auto real = mask.narrow(1, 1, T - 1).mul(mask.narrow(1, 0, T - 1)).to(torch::kFloat32);
  (model.token_logprobs(ids, mask, pos) * real).sum().backward();
  int64_t compared = 0;
  for (const auto& [name, t] : model.named_parameters()) {
    if (!expected.find("grad." + name)) continue;
    auto ref = expected.load("grad." + name);
    ASSERT_TRUE(t.grad().defined()) << name;
    const double scale = std::max(1.0, ref.abs().max().item<double>());
    EXPECT_LE((t.grad().cpu() - ref).abs().max().item<double>(), tolerance * scale) << label << " " << name;
    ++compared;
  }
  EXPECT_GE(compared, 5) << label;
}

class DeepseekV3Parity : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir() const { return kFixtures / GetParam(); }
};

TEST_P(DeepseekV3Parity, Float32LogitsMatchTransformers) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto logits = model->logits(model->hidden_states(ids, mask, pos));
  EXPECT_LE(max_diff_on_real_tokens(logits, expected.load("logits_fp32"), mask), 1e-4) << GetParam();
  // Without a mask (causal attention) the longest row, which has no padding, is the same.
  auto row = ids.narrow(0, 0, 1);
  auto alone = model->logits(model->hidden_states(row));
  EXPECT_LE((alone - expected.load("logits_fp32").narrow(0, 0, 1)).abs().max().item<double>(), 1e-4);
}

TEST_P(DeepseekV3Parity, BFloat16LogitsMatchTransformers) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir(), {torch::kCPU, torch::kBFloat16});
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto logits = model->logits(model->hidden_states(ids, mask, pos));
  ASSERT_EQ(logits.scalar_type(), torch::kBFloat16);
  auto fp32 = expected.load("logits_fp32");
  // As the Qwen2/Llama parity: within 2% of the logits' range of transformers' bf16 logits, and
  // no further from the fp32 truth than theirs are, within the same margin.
  const double range = fp32.abs().max().item<double>();
  EXPECT_LE(max_diff_on_real_tokens(logits, expected.load("logits_bf16"), mask), 0.02 * range) << GetParam();
  EXPECT_LE(max_diff_on_real_tokens(logits, fp32, mask),
            max_diff_on_real_tokens(expected.load("logits_bf16"), fp32, mask) + 0.02 * range);
}

TEST_P(DeepseekV3Parity, TokenLogprobsEqualLogSoftmaxOfReferenceLogits) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto ours = model->token_logprobs(ids, mask, pos);
  const int64_t T = ids.size(1);
  auto ref_logits = expected.load("logits_fp32").to(torch::kFloat64).narrow(1, 0, T - 1);
  auto ref = torch::log_softmax(ref_logits, -1).gather(2, ids.narrow(1, 1, T - 1).unsqueeze(2)).squeeze(2);
  auto real = mask.narrow(1, 1, T - 1).logical_and(mask.narrow(1, 0, T - 1));
  EXPECT_LE((ours.to(torch::kFloat64) - ref).abs().index({real}).max().item<double>(), 1e-4);
}

// The learner's gradients: autograd through MLA, the gate (its weights are differentiable; the
// bias only selects), the routed experts and the shared experts equals transformers' autograd.
TEST_P(DeepseekV3Parity, GradientsOfTokenLogprobsMatchTransformers) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  expect_gradients_match(*model, expected, ids, mask, pos, 1e-4, GetParam());
}

// Prefill the left-padded prompts into the latent cache, then decode one token at a time with
// the up-projections absorbed: every logit equals teacher forcing over the whole sequence, and
// the cache is the compressed one (kv_lora_rank + qk_rope_head_dim values per token and layer).
TEST_P(DeepseekV3Parity, LatentCacheDecodeEqualsTeacherForcing) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  const auto& c = model->config();
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask");
  const int64_t B = ids.size(0), T = ids.size(1), P = 12, cap = T + 3;  // capacity beyond the sequence
  auto full = model->logits(model->hidden_states(ids, mask));
  auto cache = aha::KVCache::allocate(c, B, cap, model->dtype(), torch::kCPU);
  ASSERT_EQ(cache.keys.size(), size_t(c.num_hidden_layers));
  EXPECT_EQ(cache.keys[0].sizes(), torch::IntArrayRef({B, 1, cap, c.mla.kv_lora_rank}));
  EXPECT_EQ(cache.values[0].sizes(), torch::IntArrayRef({B, 1, cap, c.mla.qk_rope_head_dim}));
  auto key_mask = torch::zeros({B, cap}, torch::kBool);
  key_mask.narrow(1, 0, T).copy_(mask.to(torch::kBool));
  auto positions = aha::positions_from_mask(mask);
  auto prompt_mask = mask.narrow(1, 0, P).to(torch::kBool);
  // Row 2 has no real token in the first P slots: the prefill still gives finite values.
  auto hidden = model->hidden_states_cached(ids.narrow(1, 0, P), positions.narrow(1, 0, P), torch::arange(P),
                                            key_mask.narrow(1, 0, P), cache);
  EXPECT_LE(max_diff_on_real_tokens(model->logits(hidden), full.narrow(1, 0, P), prompt_mask), 1e-4);
  for (int64_t t = P; t < T; ++t) {
    // The whole capacity as span (later slots masked), as the rollout's CUDA graphs do.
    auto h = model->hidden_states_cached(ids.narrow(1, t, 1), positions.narrow(1, t, 1), torch::tensor({t}),
                                         key_mask, cache);
    EXPECT_TRUE(torch::isfinite(h).all().item<bool>());
    auto real = mask.select(1, t).to(torch::kBool);
    auto diff = (model->logits(h).squeeze(1) - full.select(1, t)).abs().index({real}).max().item<double>();
    EXPECT_LE(diff, 1e-4) << GetParam() << " slot " << t;
  }
}

TEST_P(DeepseekV3Parity, SaveAndReloadGivesIdenticalLogitsAndTensors) {
  auto model = aha::load_model(dir());
  auto out = fs::temp_directory_path() / ("aha_dsv3_" + GetParam() + std::to_string(::getpid()));
  aha::save_model(*model, out, {.copy_extras_from = dir(), .max_shard_bytes = 100000});
  auto reloaded = aha::load_model(out);
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask");
  EXPECT_TRUE(torch::equal(model->logits(model->hidden_states(ids, mask)),
                           reloaded->logits(reloaded->hidden_states(ids, mask))));
  // Everything transformers saved is saved again under the same name (the routing bias too),
  // except the multi-token-prediction layer, which aha does not keep.
  aha::CheckpointReader original(dir()), saved(out);
  const auto saved_names = saved.names();
  std::set<std::string> want, got(saved_names.begin(), saved_names.end());
  const auto mtp = "model.layers." + std::to_string(model->config().num_hidden_layers) + ".";
  for (const auto& n : original.names())
    if (n.rfind(mtp, 0) != 0) want.insert(n);
  EXPECT_EQ(got, want);
  aha::remove_tree(out);
}

// On CUDA (skipped elsewhere): fp32 logits, token log-probs' gradients and the latent-cache
// decode equal transformers' fp32 results as on the CPU (looser bounds: different kernels and
// reduction orders), and bf16 logits stay as close to them as transformers' own bf16 logits.
TEST_P(DeepseekV3Parity, CudaMatchesTransformers) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  const auto cuda = torch::Device(torch::kCUDA);
  auto ids = expected.load("input_ids").to(cuda), mask = expected.load("attention_mask").to(cuda);
  auto pos = expected.load("position_ids").to(cuda);
  auto cpu_mask = expected.load("attention_mask");
  auto fp32_ref = expected.load("logits_fp32");
  auto model = aha::load_model(dir(), {cuda, torch::kFloat32});
  {
    torch::NoGradGuard no_grad;
    auto logits = model->logits(model->hidden_states(ids, mask, pos)).cpu();
    EXPECT_LE(max_diff_on_real_tokens(logits, fp32_ref, cpu_mask), 1e-3) << GetParam();
    auto bf16 = aha::load_model(dir(), {cuda, torch::kBFloat16});
    auto low = bf16->logits(bf16->hidden_states(ids, mask, pos)).cpu();
    const double range = fp32_ref.abs().max().item<double>();
    EXPECT_LE(max_diff_on_real_tokens(low, fp32_ref, cpu_mask),
              max_diff_on_real_tokens(expected.load("logits_bf16"), fp32_ref, cpu_mask) + 0.02 * range)
        << GetParam();
  }
  expect_gradients_match(*model, expected, ids, mask, pos, 1e-3, GetParam());
  const int64_t T = ids.size(1);
  // Decode from the latent cache on the device, one token at a time after a prefill.
  torch::NoGradGuard no_grad;
  const int64_t B = ids.size(0), P = 12;
  auto cache = aha::KVCache::allocate(model->config(), B, T, torch::kFloat32, cuda);
  auto key_mask = mask.to(torch::kBool);
  auto positions = aha::positions_from_mask(mask);
  model->hidden_states_cached(ids.narrow(1, 0, P), positions.narrow(1, 0, P), torch::arange(P, cuda),
                              key_mask.narrow(1, 0, P), cache);
  for (int64_t t = P; t < T; ++t) {
    auto h = model->hidden_states_cached(ids.narrow(1, t, 1), positions.narrow(1, t, 1), torch::tensor({t}).to(cuda),
                                         key_mask, cache);
    auto row_real = cpu_mask.select(1, t).to(torch::kBool);
    auto diff = (model->logits(h).squeeze(1).cpu() - fp32_ref.select(1, t)).abs().index({row_real}).max().item<double>();
    EXPECT_LE(diff, 1e-3) << GetParam() << " slot " << t;
  }
}

TEST(DeepseekV3, MultiTokenPredictionLayerIsReadAndIgnoredAndSaysSo) {
  ::testing::internal::CaptureStderr();
  auto model = aha::load_model(kFixtures / "deepseek_v3_mtp");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("ignoring the multi-token-prediction layer"), std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.2"), std::string::npos) << err;
  EXPECT_EQ(err.find("warning"), std::string::npos) << err;  // not reported as unknown tensors
  EXPECT_EQ(model->config().deepseek_moe.num_nextn_predict_layers, 1);
  // A checkpoint without one says nothing.
  ::testing::internal::CaptureStderr();
  aha::load_model(kFixtures / "deepseek_v3_qlora_groups");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(DeepseekV3, RoutingBiasIsABufferNotAParameter) {
  auto model = aha::load_model(kFixtures / "deepseek_v3_qlora_groups");
  for (const auto& [name, t] : model->named_parameters())
    EXPECT_EQ(name.find("e_score_correction_bias"), std::string::npos) << name;
  auto buffers = model->named_buffers();
  ASSERT_EQ(buffers.size(), 2u);  // layers 1 and 2 (layer 0 is dense)
  EXPECT_EQ(buffers[0].first, "model.layers.1.mlp.gate.e_score_correction_bias");
  // The gate and its bias stay float32 in a bf16 model, as transformers keeps them.
  auto bf16 = aha::load_model(kFixtures / "deepseek_v3_qlora_groups", {torch::kCPU, torch::kBFloat16});
  for (const auto& [name, t] : bf16->checkpoint_tensors()) {
    const bool router = name.find("mlp.gate.") != std::string::npos;
    EXPECT_EQ(t.scalar_type(), router ? torch::kFloat32 : torch::kBFloat16) << name;
  }
  // The fixture's bias is not zero, so the selection really used it.
  EXPECT_GT(buffers[0].second.abs().max().item<double>(), 0.0);
}

TEST(DeepseekV3, ParameterCountsMatchTransformersModels) {
  // Golden: sum of numel over transformers' DeepseekV3ForCausalLM parameters (meta device);
  // active = total minus the routed experts a token does not use.
  auto big = aha::ModelConfig::from_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/deepseek-v3.json");
  EXPECT_EQ(big.parameter_count(), 671026404352);
  EXPECT_EQ(big.active_parameter_count(), 37552282624);
  auto tiny = aha::ModelConfig::from_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/tiny-deepseek-v3.json");
  EXPECT_EQ(tiny.parameter_count(), 231088);
  EXPECT_EQ(tiny.active_parameter_count(), 157360);
  // And each fixture's count equals the elements of the tensors transformers saved (less the
  // routing bias buffers and the ignored MTP layer).
  for (const auto& name : fixture_names()) {
    auto config = aha::ModelConfig::from_file(kFixtures / name / "config.json");
    aha::CheckpointReader checkpoint(kFixtures / name);
    const auto mtp = "model.layers." + std::to_string(config.num_hidden_layers) + ".";
    int64_t numel = 0;
    for (const auto& n : checkpoint.names()) {
      if (n.rfind(mtp, 0) == 0 || n.find("e_score_correction_bias") != std::string::npos) continue;
      int64_t elements = 1;
      for (int64_t d : checkpoint.entry(n).shape) elements *= d;
      numel += elements;
    }
    EXPECT_EQ(config.parameter_count(), numel) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DeepseekV3Parity, ::testing::ValuesIn(fixture_names()));

}  // namespace

namespace {

std::string tiny_config() { return aha::read_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/tiny-deepseek-v3.json"); }

// tiny-deepseek-v3.json with "key": value set (added when absent); null removes nothing.
std::string tiny_with(const std::string& key, const std::string& value) {
  std::string s = tiny_config();
  const auto pos = s.find("\"" + key + "\"");
  if (pos == std::string::npos) return "{\"" + key + "\": " + value + ", " + s.substr(s.find('{') + 1);
  const auto colon = s.find(':', pos);
  auto end = s.find_first_of(",\n}", colon);
  return s.substr(0, colon + 1) + " " + value + s.substr(end);
}

std::string error_of(const std::string& text) {
  try {
    aha::ModelConfig::from_json(text, "config.json");
  } catch (const aha::Error& e) {
    return e.what();
  }
  return "";
}

TEST(DeepseekV3Config, ReadsTheFieldsAsTransformers) {
  auto c = aha::ModelConfig::from_json(tiny_config(), "config.json");
  EXPECT_EQ(c.architecture, "DeepseekV3ForCausalLM");
  EXPECT_TRUE(c.uses_mla());
  EXPECT_EQ(c.mla.q_lora_rank, 48);
  EXPECT_EQ(c.head_dim, 8);  // the rotary dims
  EXPECT_DOUBLE_EQ(c.mla.softmax_scale, 1.0 / std::sqrt(24.0));
  EXPECT_FALSE(c.is_deepseek_moe_layer(0));
  EXPECT_TRUE(c.is_deepseek_moe_layer(1));
  EXPECT_EQ(aha::ModelConfig::from_json(tiny_with("q_lora_rank", "null"), "c").mla.q_lora_rank, 0);
  // DeepSeek-V3's YaRN: factor 40, mscale = mscale_all_dim = 1, so the cos/sin factor is 1 and
  // the softmax scale is (0.1 ln 40 + 1)^2 / sqrt(192) (hand-computed: 1.3689^2 / 13.856).
  auto big = aha::ModelConfig::from_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/deepseek-v3.json");
  EXPECT_EQ(big.rope_scaling.type, "yarn");
  EXPECT_DOUBLE_EQ(big.rope_scaling.attention_factor, 1.0);
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(big.mla.softmax_scale, m * m / std::sqrt(192.0), 1e-15);
  EXPECT_NEAR(big.mla.softmax_scale, 0.135234, 1e-6);
  EXPECT_EQ(big.deepseek_moe.num_nextn_predict_layers, 1);
}

TEST(DeepseekV3Config, UnsupportedValuesAreErrorsNamingTheKey) {
  EXPECT_NE(error_of(tiny_with("scoring_func", "\"softmax\"")).find("scoring_func"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("topk_method", "\"greedy\"")).find("topk_method"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("moe_layer_freq", "2")).find("moe_layer_freq"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("n_group", "3")).find("n_group"), std::string::npos);  // 8 experts
  EXPECT_NE(error_of(tiny_with("n_group", "8")).find("at least 2"), std::string::npos);  // one expert a group
  EXPECT_NE(error_of(tiny_with("topk_group", "3")).find("topk_group"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("num_experts_per_tok", "5")).find("num_experts_per_tok"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("first_k_dense_replace", "4")).find("first_k_dense_replace"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("num_key_value_heads", "2")).find("num_key_value_heads"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("qk_rope_head_dim", "7")).find("qk_rope_head_dim"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("kv_lora_rank", "0")).find("kv_lora_rank"), std::string::npos);
  EXPECT_NE(error_of(tiny_with("rope_scaling", R"({"type": "longrope", "factor": 2})")).find("longrope"),
            std::string::npos);
  EXPECT_NE(error_of(tiny_with("architectures", R"(["LlamaForCausalLM"])")).find("DeepseekV3ForCausalLM"),
            std::string::npos);
  // YaRN stays refused for the families whose attention does not apply its mscale.
  const std::string llama = R"({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 8, "rms_norm_eps": 1e-5,
    "rope_scaling": {"type": "yarn", "factor": 2.0}})";
  EXPECT_NE(error_of(llama).find("deepseek_v3 only"), std::string::npos);
  EXPECT_EQ(error_of(tiny_config()), "");
}

}  // namespace
