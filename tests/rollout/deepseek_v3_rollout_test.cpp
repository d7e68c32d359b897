// The rollout engine on DeepSeek-V3 (multi-head latent attention, DeepSeekMoE): greedy tokens
// equal transformers' generate() (tests/fixtures/make_deepseek_v3_fixtures.py), decoding from
// the compressed latent cache shared across a group and compacted as rows finish; behaviour
// log-probs equal teacher forcing; the memory plan counts the latent cache.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/model/model_io.h"
#include "policy/model/moe.h"
#include "policy/model/safetensors.h"
#include "rollout/memory_plan.h"
#include "rollout/rollout_engine.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

class DeepseekV3Greedy : public ::testing::TestWithParam<std::string> {};

// All golden prompts in one batch (different lengths: left padding), two samples each sharing
// their prompt's prefilled latent cache.
TEST_P(DeepseekV3Greedy, MatchesTransformersGenerate) {
  auto model = aha::load_model(kFixtures / GetParam());
  aha::SafetensorsFile file(kFixtures / GetParam() / "expected.safetensors");
  aha::RolloutRequest request;
  std::vector<std::vector<int64_t>> golden;
  for (int i = 0; file.find("greedy_prompt_" + std::to_string(i)); ++i) {
    request.prompts.push_back(to_vector(file.load("greedy_prompt_" + std::to_string(i))));
    golden.push_back(to_vector(file.load("greedy_tokens_" + std::to_string(i))));
  }
  ASSERT_EQ(golden.size(), 3u);
  request.group_size = 2;
  request.settings.sampler.temperature = 0;
  request.settings.stop.max_new_tokens = static_cast<int64_t>(golden[0].size());
  request.settings.stop.ignore_eos = true;  // the fixtures disable EOS
  aha::EngineOptions options;
  options.span_bucket = 8;  // attention spans shorter than the cache, growing during decode
  aha::RolloutEngine engine(*model, options);
  auto result = engine.generate(request);
  ASSERT_EQ(result.completions.size(), 6u);
  for (const auto& c : result.completions)
    EXPECT_EQ(c.tokens, golden[c.prompt_index]) << GetParam() << " prompt " << c.prompt_index << " sample " << c.sample_index;
}

INSTANTIATE_TEST_SUITE_P(Models, DeepseekV3Greedy,
                         ::testing::Values("deepseek_v3_qlora_groups", "deepseek_v3_plainq_top1_yarn",
                                           "deepseek_v3_dense_bias", "deepseek_v3_mtp"));

// Sampled completions of different lengths (EOS ids), so rows finish at different steps and
// the latent cache is compacted: every behaviour log-prob equals the teacher-forced one.
TEST(DeepseekV3Rollout, BehaviourLogprobsMatchTeacherForcing) {
  for (const std::string name : {"deepseek_v3_qlora_groups", "deepseek_v3_plainq_top1_yarn"}) {
    auto model = aha::load_model(kFixtures / name);
    aha::EngineOptions options;
    options.prefill_tokens = 10;  // one prompt per prefill chunk
    aha::RolloutEngine engine(*model, options);
    aha::RolloutRequest request;
    request.prompts = {{1, 17, 99, 4, 200}, {1, 3, 3, 3, 250, 9, 8, 7, 6}, {1, 42}};
    request.group_size = 4;
    request.settings.sampler.temperature = 0.8;
    request.settings.stop.max_new_tokens = 14;
    for (int64_t id = 100; id < 164; ++id) request.settings.stop.eos_token_ids.push_back(id);  // a quarter
    request.settings.seed = 7;
    auto result = engine.generate(request);
    ASSERT_EQ(result.completions.size(), 12u);
    EXPECT_GT(result.stats.compactions, 0) << name;  // rows really finished early
    torch::NoGradGuard no_grad;
    for (const auto& c : result.completions) {
      auto ids = request.prompts[c.prompt_index];
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto expected = model->token_logprobs(torch::tensor(ids, torch::kInt64).view({1, -1}), {}, {}, 0.8);
      const int64_t n = static_cast<int64_t>(c.tokens.size());
      auto tail = expected[0].narrow(0, expected.size(1) - n, n);
      EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), 2e-5) << name << " prompt " << c.prompt_index;
    }
  }
}

// On CUDA (skipped elsewhere): the engine gives transformers' greedy tokens in fp32, and its
// sampled behaviour log-probs equal teacher forcing on the device, for rows that finish at
// different steps (compaction).
TEST(DeepseekV3Rollout, CudaGraphsMatchTransformersAndTeacherForcing) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = torch::Device(torch::kCUDA);
  for (const std::string name : {"deepseek_v3_qlora_groups", "deepseek_v3_plainq_top1_yarn"}) {
    auto model = aha::load_model(kFixtures / name, {cuda, torch::kFloat32});
    aha::SafetensorsFile file(kFixtures / name / "expected.safetensors");
    aha::RolloutRequest greedy;
    std::vector<std::vector<int64_t>> golden;
    for (int i = 0; file.find("greedy_prompt_" + std::to_string(i)); ++i) {
      greedy.prompts.push_back(to_vector(file.load("greedy_prompt_" + std::to_string(i))));
      golden.push_back(to_vector(file.load("greedy_tokens_" + std::to_string(i))));
    }
    greedy.group_size = 2;
    greedy.settings.sampler.temperature = 0;
    greedy.settings.stop.max_new_tokens = static_cast<int64_t>(golden[0].size());
    greedy.settings.stop.ignore_eos = true;
    aha::EngineOptions options;
    options.span_bucket = 8;
    aha::RolloutEngine engine(*model, options);
    auto result = engine.generate(greedy);
    ASSERT_EQ(result.completions.size(), 2 * golden.size());
    for (const auto& c : result.completions) EXPECT_EQ(c.tokens, golden[c.prompt_index]) << name << " prompt " << c.prompt_index;

    aha::RolloutRequest sampled;
    sampled.prompts = {{1, 17, 99, 4, 200}, {1, 3, 3, 3, 250, 9, 8, 7, 6}, {1, 42}};
    sampled.group_size = 4;
    sampled.settings.sampler.temperature = 0.8;
    sampled.settings.stop.max_new_tokens = 14;
    for (int64_t id = 100; id < 164; ++id) sampled.settings.stop.eos_token_ids.push_back(id);
    sampled.settings.seed = 7;
    auto out = engine.generate(sampled);
    ASSERT_EQ(out.completions.size(), 12u);
    torch::NoGradGuard no_grad;
    for (const auto& c : out.completions) {
      auto ids = sampled.prompts[c.prompt_index];
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto expected = model->token_logprobs(torch::tensor(ids, torch::kInt64).view({1, -1}).to(cuda), {}, {}, 0.8).cpu();
      const int64_t n = static_cast<int64_t>(c.tokens.size());
      auto tail = expected[0].narrow(0, expected.size(1) - n, n);
      EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), 1e-3) << name << " prompt " << c.prompt_index;
    }
  }
}

// In bf16 on a GPU with the grouped expert GEMM, decode steps (MLA from the latent cache,
// grouped routing, routed and shared experts) are captured as CUDA graphs: the replayed steps
// give exactly the tokens and log-probs of eager decoding.
TEST(DeepseekV3Rollout, CudaGraphDecodingEqualsEagerDecoding) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto cuda = torch::Device(torch::kCUDA);
  for (const std::string name : {"deepseek_v3_qlora_groups", "deepseek_v3_plainq_top1_yarn"}) {
    auto model = aha::load_model(kFixtures / name, {cuda, torch::kBFloat16});
    const auto& c = model->config();
    const bool grouped = aha::grouped_experts_apply(cuda, torch::kBFloat16, c.hidden_size, c.moe_intermediate_size);
    aha::RolloutRequest request;
    request.prompts = {{1, 17, 99, 4, 200}, {1, 3, 3, 3, 250, 9, 8, 7, 6}, {1, 42}};
    request.group_size = 4;
    request.settings.sampler.temperature = 0.8;
    request.settings.stop.max_new_tokens = 20;
    for (int64_t id = 100; id < 132; ++id) request.settings.stop.eos_token_ids.push_back(id);
    request.settings.seed = 11;
    aha::EngineOptions eager_options;
    eager_options.use_cuda_graphs = false;
    aha::RolloutEngine graphs(*model), eager(*model, eager_options);
    auto a = graphs.generate(request), b = eager.generate(request);
    if (grouped) {
      EXPECT_GT(a.stats.graphs_captured, 0) << name;
    } else {
      EXPECT_EQ(a.stats.graphs_captured, 0) << name << ": the expert loop cannot be captured";
    }
    ASSERT_EQ(a.completions.size(), b.completions.size());
    for (size_t i = 0; i < a.completions.size(); ++i) {
      EXPECT_EQ(a.completions[i].tokens, b.completions[i].tokens) << name << " completion " << i;
      EXPECT_EQ(a.completions[i].logprobs, b.completions[i].logprobs) << name << " completion " << i;
    }
  }
}

// (kv_lora_rank + qk_rope_head_dim) x layers x dtype size per token, whatever the head count.
TEST(DeepseekV3Rollout, MemoryPlanCountsTheLatentCache) {
  auto big = aha::ModelConfig::from_file(fs::path(AHA_SOURCE_DIR) / "recipes/models/deepseek-v3.json");
  EXPECT_EQ(aha::kv_cache_bytes_per_token(big, 2), (512 + 64) * 61 * 2);  // 70,272 bytes in bf16
  auto model = aha::load_model(kFixtures / "deepseek_v3_qlora_groups");
  const auto& c = model->config();
  EXPECT_EQ(aha::kv_cache_bytes_per_token(c, 4), (24 + 8) * 3 * 4);
  aha::RolloutShape shape;
  shape.prompts = 3;
  shape.group_size = 5;
  shape.prompt_tokens = 10;
  shape.max_new_tokens = 20;
  shape.cache_capacity = 32;
  shape.prefill_rows = 3;
  shape.element_size = 4;
  EXPECT_EQ(aha::plan_rollout_memory(c, shape).kv_cache_bytes, 15 * 32 * (24 + 8) * 3 * 4);
  // The cache the engine allocates is that size.
  auto cache = aha::KVCache::allocate(c, 15, 32, torch::kFloat32, torch::kCPU);
  int64_t bytes = 0;
  for (size_t l = 0; l < cache.keys.size(); ++l) bytes += cache.keys[l].nbytes() + cache.values[l].nbytes();
  EXPECT_EQ(bytes, 15 * 32 * aha::kv_cache_bytes_per_token(c, 4));
}

}  // namespace
