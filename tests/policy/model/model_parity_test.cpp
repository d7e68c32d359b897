// Parity with Hugging Face transformers: logits of tiny random Qwen2/Llama models against
// reference outputs made by tests/fixtures/make_model_fixtures.py (transformers 5.17).
#include <gtest/gtest.h>

#include "core/files.h"

#include <filesystem>

#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

std::vector<std::string> fixture_names() {
  return {"qwen2_gqa_tied", "qwen2_mha_untied_sharded", "llama_mqa_headdim",
          "llama_bias_llama3rope", "llama_linear_rope", "qwen2_dynamic_rope"};
}

// Max |a - b| over the real (non-padding) positions of [B, T, V] logits.
double max_diff_on_real_tokens(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  auto real = mask.to(torch::kBool);
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().index({real}).max().item<double>();
}

class ModelParity : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path dir() const { return kFixtures / GetParam(); }
};

TEST_P(ModelParity, Float32LogitsMatchTransformers) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto logits = model->logits(model->hidden_states(ids, mask, pos));
  double diff = max_diff_on_real_tokens(logits, expected.load("logits_fp32"), mask);
  EXPECT_LE(diff, 1e-4) << GetParam();
  // Positions derived from the mask are the ones the fixture used.
  auto derived = model->logits(model->hidden_states(ids, mask));
  EXPECT_LE(max_diff_on_real_tokens(derived, logits, mask), 1e-6);
}

TEST_P(ModelParity, BFloat16LogitsMatchTransformers) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir(), {torch::kCPU, torch::kBFloat16});
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto logits = model->logits(model->hidden_states(ids, mask, pos));
  ASSERT_EQ(logits.scalar_type(), torch::kBFloat16);
  auto ref = expected.load("logits_bf16");
  auto fp32 = expected.load("logits_fp32");
  // Stated tolerance: bf16 keeps 8 bits of mantissa, so a logit of magnitude m carries about
  // m/256 of rounding per op; we require aha's bf16 logits to be as close to transformers'
  // bf16 logits as 2% of the logits' range, and no further from the fp32 truth than
  // transformers' own bf16 logits are, within the same margin.
  const double range = fp32.abs().max().item<double>();
  const double diff = max_diff_on_real_tokens(logits, ref, mask);
  EXPECT_LE(diff, 0.02 * range) << GetParam() << " range " << range;
  const double ours_vs_truth = max_diff_on_real_tokens(logits, fp32, mask);
  const double theirs_vs_truth = max_diff_on_real_tokens(ref, fp32, mask);
  EXPECT_LE(ours_vs_truth, theirs_vs_truth + 0.02 * range) << GetParam();
}

TEST_P(ModelParity, TokenLogprobsEqualLogSoftmaxOfReferenceLogits) {
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  auto model = aha::load_model(dir());
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto ours = model->token_logprobs(ids, mask, pos);  // [B, T-1]
  const int64_t T = ids.size(1);
  auto ref_logits = expected.load("logits_fp32").to(torch::kFloat64).narrow(1, 0, T - 1);
  auto ref = torch::log_softmax(ref_logits, -1).gather(2, ids.narrow(1, 1, T - 1).unsqueeze(2)).squeeze(2);
  // Scored where both the context token and the target are real.
  auto real = mask.narrow(1, 1, T - 1).logical_and(mask.narrow(1, 0, T - 1));
  EXPECT_LE((ours.to(torch::kFloat64) - ref).abs().index({real}).max().item<double>(), 1e-4);
}

TEST_P(ModelParity, SaveAndReloadGivesIdenticalLogits) {
  auto model = aha::load_model(dir());
  auto out = fs::temp_directory_path() / ("aha_parity_" + GetParam() + std::to_string(::getpid()));
  aha::save_model(*model, out, {.copy_extras_from = dir(), .max_shard_bytes = 100000});  // force shards
  auto reloaded = aha::load_model(out);
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask");
  EXPECT_TRUE(torch::equal(model->logits(model->hidden_states(ids, mask)),
                           reloaded->logits(reloaded->hidden_states(ids, mask))));
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(out / "generation_config.json"));  // copied extras
  aha::remove_tree(out);
}


}  // namespace

namespace {

// The same parity on the GPU (skipped where there is none): float32 with TF32 off (LibTorch's
// default for matmuls) and bfloat16 with the CPU test's tolerance.
TEST_P(ModelParity, CudaLogitsMatchTransformers) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  aha::SafetensorsFile expected(dir() / "expected.safetensors");
  torch::NoGradGuard no_grad;
  auto ids = expected.load("input_ids"), mask = expected.load("attention_mask"), pos = expected.load("position_ids");
  auto fp32 = expected.load("logits_fp32");
  auto model = aha::load_model(dir(), {torch::kCUDA, torch::kFloat32});
  auto logits = model->logits(model->hidden_states(ids, mask, pos)).cpu();
  EXPECT_LE(max_diff_on_real_tokens(logits, fp32, mask), 1e-4) << GetParam();
  auto bf16 = aha::load_model(dir(), {torch::kCUDA, torch::kBFloat16});
  auto logits16 = bf16->logits(bf16->hidden_states(ids, mask, pos)).cpu();
  const double range = fp32.abs().max().item<double>();
  EXPECT_LE(max_diff_on_real_tokens(logits16, expected.load("logits_bf16"), mask), 0.02 * range) << GetParam();
}

}  // namespace

namespace {
INSTANTIATE_TEST_SUITE_P(Fixtures, ModelParity, ::testing::ValuesIn(fixture_names()));
}  // namespace
