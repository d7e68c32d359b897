// The CUDA decode kernels (policy/model/cuda_decode.h) on a CUDA machine; skipped without CUDA.
// - The decode attention against a float64 masked softmax computed here, over head sizes,
//   group sizes, padding holes, slots after the new token (not to be read), a row with no
//   visible slot, and split key ranges.
// - A whole decode step with the kernels against the LibTorch path they replace, from the
//   same cache, for three model shapes in bf16 and fp16.
// - Rollout behaviour log-probs with the kernels against teacher forcing by three learners.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <ostream>
#include <string>

#include "core/files.h"
#include "policy/model/model_config.h"
#include "policy/model/model_io.h"
#include "rollout/rollout_engine.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "policy/model/cuda_decode.h"
#include "policy/model/cuda_decode_args.h"
#endif

namespace {

#ifdef AHA_WITH_CUDA
struct AttentionCase {
  int64_t head_dim, rep, rows;
  int splits;  // 0: decode_attention_splits' choice
};

void PrintTo(const AttentionCase& c, std::ostream* os) {
  *os << "D" << c.head_dim << "_rep" << c.rep << "_rows" << c.rows << "_splits" << c.splits;
}

class DecodeAttentionKernel : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(DecodeAttentionKernel, MatchesMaskedSoftmax) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto [D, rep, B, forced_splits] = GetParam();
  const int64_t kvh = 2, nh = kvh * rep, capacity = 300, span = 288, slot = 260;
  torch::manual_seed(D * 100 + rep * 10 + B);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto q = torch::randn({B, nh, D}).to(cuda.dtype(torch::kBFloat16));
  auto keys = torch::randn({B, kvh, capacity, D}).to(cuda.dtype(torch::kBFloat16));
  auto values = torch::randn({B, kvh, capacity, D}).to(cuda.dtype(torch::kBFloat16));
  // Slots after the new one hold huge values: reading them would show.
  keys.narrow(2, slot + 1, capacity - slot - 1).fill_(30.0);
  values.narrow(2, slot + 1, capacity - slot - 1).fill_(1000.0);
  // Left padding of a different length per row, random holes, and row 1 with nothing visible.
  auto mask = torch::rand({B, capacity}) > 0.2;
  for (int64_t b = 0; b < B; ++b) mask[b].narrow(0, 0, (b * 37) % 200).fill_(false);
  mask[1].fill_(false);
  mask = mask.to(torch::kCUDA);
  auto slot_t = torch::tensor({slot}, cuda.dtype(torch::kInt64));
  auto out = torch::empty({B, nh, D}, cuda.dtype(torch::kBFloat16));

  const int splits = forced_splits > 0 ? forced_splits : aha::cuda::decode_attention_splits(B, kvh, span);
  auto partial_out = torch::empty({B * nh * splits * D}, cuda.dtype(torch::kFloat32));
  auto partial_lse = torch::empty({B * nh * splits}, cuda.dtype(torch::kFloat32));
  auto a = aha::decode_attention_args(q, keys, values, mask, slot_t, span, out);
  a.splits = splits;
  a.partial_out = partial_out.data_ptr<float>();
  a.partial_lse = partial_lse.data_ptr<float>();
  const char* failure = aha::cuda::launch_decode_attention(aha::cuda::Dtype::kBFloat16, a,
                                                           c10::cuda::getCurrentCUDAStream().stream());
  ASSERT_EQ(failure, nullptr) << failure;

  // Reference: float64 softmax over the visible slots [0, slot] with the mask.
  auto q64 = q.to(torch::kFloat64).view({B, kvh, rep, D});
  auto k64 = keys.to(torch::kFloat64).narrow(2, 0, slot + 1);
  auto v64 = values.to(torch::kFloat64).narrow(2, 0, slot + 1);
  auto scores = torch::matmul(q64, k64.transpose(-1, -2)) / std::sqrt(double(D));  // [B, kvh, rep, slot+1]
  auto visible = mask.narrow(1, 0, slot + 1).view({B, 1, 1, slot + 1});
  scores = scores.masked_fill(visible.logical_not(), -std::numeric_limits<double>::infinity());
  auto expected = torch::matmul(torch::softmax(scores, -1), v64).view({B, nh, D});
  expected[1].zero_();  // nothing visible: zeros by contract
  auto got = out.to(torch::kFloat64);
  EXPECT_FALSE(got.isnan().any().item<bool>());
  EXPECT_TRUE(torch::equal(got[1], torch::zeros_like(got[1])));
  // As close to the float64 result as SDPA in the same dtype is (rows with something visible).
  auto allowed = mask.narrow(1, 0, span).logical_and(torch::arange(span, cuda.dtype(torch::kInt64)).le(slot));
  auto additive = torch::zeros({B, 1, 1, span}, cuda.dtype(torch::kBFloat16))
                      .masked_fill_(allowed.logical_not().view({B, 1, 1, span}), -INFINITY);
  auto sdpa = at::scaled_dot_product_attention(q.view({B, kvh, rep, D}), keys.narrow(2, 0, span),
                                               values.narrow(2, 0, span), additive, 0.0, false, 1.0 / std::sqrt(double(D)))
                  .view({B, nh, D})
                  .to(torch::kFloat64);
  auto seen = torch::ones({B}, torch::kBool);
  seen[1] = false;
  seen = seen.to(torch::kCUDA);
  const double err = (got - expected).index({seen}).abs().max().item<double>();
  const double sdpa_err = (sdpa - expected).index({seen}).abs().max().item<double>();
  const double size = expected.index({seen}).abs().max().item<double>();
  EXPECT_LE(err, 1.5 * sdpa_err + 1e-3 * size)
      << "D " << D << " rep " << rep << " rows " << B << " splits " << splits << " SDPA error " << sdpa_err;
  std::printf("attention D %lld rep %lld rows %lld splits %d: max error %.2e, SDPA %.2e (output max %.2f)\n",
              (long long)D, (long long)rep, (long long)B, splits, err, sdpa_err, size);
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeAttentionKernel,
                         ::testing::Values(AttentionCase{64, 7, 300, 0}, AttentionCase{64, 7, 3, 0},
                                           AttentionCase{64, 7, 5, 3}, AttentionCase{128, 4, 200, 0},
                                           AttentionCase{128, 8, 4, 2}, AttentionCase{32, 1, 260, 0},
                                           AttentionCase{32, 2, 2, 0}, AttentionCase{64, 6, 150, 1},
                                           AttentionCase{128, 16, 7, 0}, AttentionCase{64, 12, 100, 0}));
#endif

aha::ModelConfig config_for(const std::string& type, int64_t heads, int64_t kv_heads, int64_t head_dim) {
  const std::string arch = type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  const std::string json = R"({"architectures": [")" + arch + R"("], "model_type": ")" + type +
                           R"(", "hidden_size": )" + std::to_string(heads * head_dim) +
                           R"(, "intermediate_size": 384, "num_hidden_layers": 3, "num_attention_heads": )" +
                           std::to_string(heads) + R"(, "num_key_value_heads": )" + std::to_string(kv_heads) +
                           R"(, "max_position_embeddings": 1024, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 2, "initializer_range": 0.1,
    "tie_word_embeddings": true, "vocab_size": 512})";
  return aha::ModelConfig::from_json(json, "decode kernel test config");
}

struct StepCase {
  std::string type;
  int64_t heads, kv_heads, head_dim;
  torch::ScalarType dtype;
  bool attention_kernel;
};

void PrintTo(const StepCase& c, std::ostream* os) {
  *os << c.type << "_D" << c.head_dim << "_rep" << c.heads / c.kv_heads
      << (c.dtype == torch::kHalf ? "_fp16" : "_bf16") << (c.attention_kernel ? "_attention_kernel" : "_sdpa");
}

class DecodeKernelStep : public ::testing::TestWithParam<StepCase> {};

// From one cache, a step with the kernels and a step without give the same hidden states and
// write the same keys and values, up to float32 summation order and the rounding that follows.
TEST_P(DecodeKernelStep, MatchesTheLibTorchPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto& p = GetParam();
  auto model = aha::init_model(config_for(p.type, p.heads, p.kv_heads, p.head_dim), 5, p.dtype, torch::kCUDA);
  torch::NoGradGuard no_grad;
  model->set_decode_attention_kernel(p.attention_kernel);
  auto fused = model->fuse_projections();
  const int64_t B = 6, P = 40, steps = 5, cap = P + steps;
  torch::manual_seed(3);
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  auto prompt_mask = torch::ones({B, P}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) prompt_mask[b].narrow(0, 0, b * 5).fill_(0);  // left padding
  auto ids = (torch::randint(3, 512, {B, cap}, torch::kInt64) * torch::cat({prompt_mask, torch::ones({B, steps},
                                                                                               torch::kInt64)},
                                                                            1))
                 .to(torch::kCUDA);
  auto cache = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCUDA);
  auto key_mask = torch::zeros({B, cap}, cuda.dtype(torch::kBool));
  key_mask.narrow(1, 0, P).copy_(prompt_mask.to(torch::kBool));
  auto positions = aha::positions_from_mask(prompt_mask).to(torch::kCUDA);
  model->hidden_states_cached(ids.narrow(1, 0, P), positions, torch::arange(P, cuda.dtype(torch::kInt64)),
                              key_mask.narrow(1, 0, P), cache, &fused);
  auto next = positions.select(1, P - 1) + 1;
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t slot = P + t;
    key_mask.select(1, slot).fill_(true);
    auto slot_t = torch::tensor({slot}, cuda.dtype(torch::kInt64));
    auto step_ids = ids.narrow(1, slot, 1);
    auto pos = (next + t).view({B, 1});
    auto mine = cache.select_rows(torch::arange(B, cuda.dtype(torch::kInt64)));  // a copy
    model->set_decode_kernels(true);
    auto fast = model->hidden_states_cached(step_ids, pos, slot_t, key_mask, mine, &fused);
    model->set_decode_kernels(false);
    auto reference = model->hidden_states_cached(step_ids, pos, slot_t, key_mask, cache, &fused);
    const double scale = reference.abs().max().item<double>();
    const double err = (fast - reference).abs().max().item<double>();
    EXPECT_LE(err, 0.03 * scale) << "step " << t;
    for (size_t l = 0; l < cache.keys.size(); ++l) {
      auto k_err = (mine.keys[l] - cache.keys[l]).abs().max().item<double>();
      auto v_err = (mine.values[l] - cache.values[l]).abs().max().item<double>();
      EXPECT_LE(k_err, 0.03 * cache.keys[l].abs().max().item<double>()) << "layer " << l << " step " << t;
      EXPECT_LE(v_err, 0.03 * cache.values[l].abs().max().item<double>()) << "layer " << l << " step " << t;
    }
    // Only the new slot was written.
    EXPECT_TRUE(torch::equal(mine.keys[0].narrow(2, 0, slot), cache.keys[0].narrow(2, 0, slot)));
  }
}

INSTANTIATE_TEST_SUITE_P(Models, DecodeKernelStep,
                         ::testing::Values(StepCase{"qwen2", 14, 2, 64, torch::kBFloat16, false},
                                           StepCase{"qwen2", 14, 2, 64, torch::kBFloat16, true},
                                           StepCase{"llama", 8, 2, 128, torch::kHalf, false},
                                           StepCase{"llama", 8, 2, 128, torch::kHalf, true},
                                           StepCase{"qwen2", 8, 8, 32, torch::kBFloat16, true}));

// Behaviour log-probs of graph-captured rollouts against teacher forcing of the same tokens by
// three learners: the bf16 model (SDPA), the GPU recipes' learner (float32 master weights under
// bf16 autocast) and the float32 model. This random model (initializer range 0.1: peaked
// attention) amplifies any rounding difference, so the yardsticks are other attention
// implementations, not a fixed tolerance:
// - the kernels with SDPA attention are as close to bf16 teacher forcing as the LibTorch path;
// - the attention kernel (the default) is as close to the autocast learner and to float32 as
//   SDPA decoding, and as close to bf16 teacher forcing as PyTorch's math SDPA. (SDPA decoding
//   is closer still to bf16 teacher forcing: both run the same cuDNN kernel; transformer.h.)
TEST(DecodeKernelRollout, LogprobsAsCloseToTheLearnerAsSdpaDecoding) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto model = aha::init_model(config_for("qwen2", 14, 2, 64), 9, torch::kBFloat16, torch::kCUDA);
  const auto dir = std::filesystem::temp_directory_path() / ("aha_decode_kernels_" + std::to_string(::getpid()));
  aha::save_model(*model, dir);
  aha::LoadOptions load;
  load.device = torch::kCUDA;
  load.dtype = torch::kFloat32;
  auto exact = aha::load_model(dir, load);  // the bf16 weights, exactly, in float32
  aha::remove_tree(dir);

  aha::RolloutRequest request;
  for (int i = 0; i < 4; ++i) {
    std::vector<int64_t> prompt;
    for (int j = 0; j < 20 + 7 * i; ++j) prompt.push_back(3 + (j * 31 + i * 17) % 500);
    request.prompts.push_back(prompt);
  }
  request.group_size = 4;
  request.settings.sampler.temperature = 1.0;
  request.settings.stop.max_new_tokens = 160;
  request.settings.stop.ignore_eos = true;
  request.settings.seed = 4;

  struct Gaps {
    double bf16 = 0, autocast = 0, fp32 = 0;  // mean |behaviour - teacher-forced| log-prob
  };
  auto gaps = [&](bool kernels, bool attention_kernel, bool math_sdpa) {
    model->set_decode_kernels(kernels);
    model->set_decode_attention_kernel(attention_kernel);
    auto& context = at::globalContext();
    context.setSDPUseCuDNN(!math_sdpa);
    context.setSDPUseFlash(!math_sdpa);
    context.setSDPUseMemEfficient(!math_sdpa);
    auto result = aha::RolloutEngine(*model).generate(request);
    context.setSDPUseCuDNN(true);
    context.setSDPUseFlash(true);
    context.setSDPUseMemEfficient(true);
    model->set_decode_kernels(true);
    model->set_decode_attention_kernel(true);

    torch::NoGradGuard no_grad;
    Gaps g;
    int64_t count = 0;
    for (const auto& c : result.completions) {
      auto ids = request.prompts[c.prompt_index];
      const int64_t P = static_cast<int64_t>(ids.size()), T = static_cast<int64_t>(c.tokens.size());
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto input = torch::tensor(ids, torch::kInt64).view({1, -1}).to(torch::kCUDA);
      auto behaviour = torch::tensor(c.logprobs, torch::kFloat64);
      auto gap = [&](const aha::Transformer& learner) {
        auto forced = learner.token_logprobs(input).narrow(1, P - 1, T).squeeze(0).to(torch::kCPU, torch::kFloat64);
        return (forced - behaviour).abs().sum().item<double>();
      };
      g.bf16 += gap(*model);
      g.fp32 += gap(*exact);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      g.autocast += gap(*exact);
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
      count += T;
    }
    g.bf16 /= count, g.autocast /= count, g.fp32 /= count;
    return g;
  };
  const Gaps libtorch = gaps(false, false, false), sdpa = gaps(true, false, false), kernel = gaps(true, true, false);
  const Gaps math = gaps(false, false, true);
  std::printf("mean |behaviour - teacher-forced| log-prob (bf16 / autocast / fp32 learner): LibTorch %.4f %.4f %.4f, "
              "kernels + SDPA %.4f %.4f %.4f, attention kernel %.4f %.4f %.4f, math SDPA %.4f %.4f %.4f\n",
              libtorch.bf16, libtorch.autocast, libtorch.fp32, sdpa.bf16, sdpa.autocast, sdpa.fp32, kernel.bf16,
              kernel.autocast, kernel.fp32, math.bf16, math.autocast, math.fp32);
  EXPECT_LE(sdpa.bf16, 1.5 * libtorch.bf16 + 0.002);
  EXPECT_LE(kernel.autocast, 1.1 * libtorch.autocast + 0.005);
  EXPECT_LE(kernel.fp32, 1.1 * libtorch.fp32 + 0.005);
  EXPECT_LE(kernel.bf16, 1.25 * math.bf16 + 0.005);
}

}  // namespace
