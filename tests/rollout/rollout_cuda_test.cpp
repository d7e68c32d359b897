// On a CUDA machine: the graph-captured decode gives transformers' greedy tokens, the same
// samples as the eager path, and log-probs that match teacher forcing. Skipped without CUDA.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"
#include "rollout/rollout_engine.h"

namespace fs = std::filesystem;

namespace {

const fs::path kModel = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(RolloutCuda, GraphsMatchTransformersAndTheEagerPath) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto model = aha::load_model(kModel, {torch::Device("cuda"), torch::kFloat32});
  aha::SafetensorsFile golden(kModel / "expected.safetensors");
  aha::RolloutRequest greedy;
  for (int i = 0; i < 3; ++i) greedy.prompts.push_back(to_vector(golden.load("greedy_prompt_" + std::to_string(i))));
  greedy.group_size = 2;
  greedy.settings.sampler.temperature = 0;
  greedy.settings.stop.max_new_tokens = 16;
  greedy.settings.stop.ignore_eos = true;
  aha::EngineOptions small_spans;
  small_spans.span_bucket = 8;  // several span buckets, so several graphs, within 16 tokens
  aha::RolloutEngine engine(*model, small_spans);
  for (int call = 0; call < 2; ++call) {  // the second call replays the captured graphs
    auto result = engine.generate(greedy);
    EXPECT_GT(result.stats.graphs_captured, 1);
    for (const auto& c : result.completions) {
      EXPECT_EQ(c.tokens, to_vector(golden.load("greedy_tokens_" + std::to_string(c.prompt_index))))
          << "call " << call << " prompt " << c.prompt_index;
    }
  }

  aha::RolloutRequest sampled = greedy;
  sampled.group_size = 4;
  sampled.settings.sampler.temperature = 0.8;
  sampled.settings.sampler.top_p = 0.95;
  sampled.settings.stop.ignore_eos = false;
  sampled.settings.stop.eos_token_ids = {5, 6, 7};  // rows finish at different times: compaction
  sampled.settings.seed = 17;
  auto with_graphs = engine.generate(sampled);
  aha::EngineOptions eager = small_spans;
  eager.use_cuda_graphs = false;
  auto without = aha::RolloutEngine(*model, eager).generate(sampled);
  torch::NoGradGuard no_grad;
  // Graphs and the eager path sample the same tokens, with the learner's log-probs for them.
  auto expect_agreement = [&](const aha::RolloutRequest& request, const aha::RolloutResult& graphs,
                              const aha::RolloutResult& eager) {
    const double temperature = request.settings.sampler.temperature;
    for (size_t i = 0; i < graphs.completions.size(); ++i) {
      const auto& c = graphs.completions[i];
      EXPECT_EQ(c.tokens, eager.completions[i].tokens) << "completion " << i;
      auto ids = request.prompts[c.prompt_index];
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto input = torch::tensor(ids, torch::kInt64).view({1, -1}).cuda();
      auto expected = model->token_logprobs(input, {}, {}, temperature).cpu();
      const int64_t n = static_cast<int64_t>(c.tokens.size());
      auto tail = expected[0].narrow(0, expected.size(1) - n, n);
      EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), 1e-4) << "completion " << i;
    }
  };
  expect_agreement(sampled, with_graphs, without);

  // Without top-p the fused sampling kernel draws (sampler.h): graphs and the eager path agree,
  // and the behaviour log-probs are the learner's.
  aha::RolloutRequest untruncated = sampled;
  untruncated.settings.sampler.top_p = 1.0;
  untruncated.settings.sampler.temperature = 1.0;
  auto fused_graphs = engine.generate(untruncated);
  auto fused_eager = aha::RolloutEngine(*model, eager).generate(untruncated);
  expect_agreement(untruncated, fused_graphs, fused_eager);

  // The engine reads the live weights: an in-place update (as an optimizer step makes) is seen
  // by the graphs captured before it.
  for (auto& p : model->parameters()) p.mul_(1.25);
  auto updated = engine.generate(sampled);
  auto updated_eager = aha::RolloutEngine(*model, eager).generate(sampled);
  int changed = 0;
  for (size_t i = 0; i < updated.completions.size(); ++i) {
    EXPECT_EQ(updated.completions[i].tokens, updated_eager.completions[i].tokens) << "completion " << i;
    changed += updated.completions[i].tokens != with_graphs.completions[i].tokens;
  }
  EXPECT_GT(changed, 0);
}

// Continuous batching on the GPU: rows refilled into a running batch (graphs, per-row sampling
// steps in the fused sampler, the decode kernels of bf16 models) give the completions of the whole request at once, up to near-ties between kernels
// for different batch shapes, with the learner's log-probs.
TEST(RolloutCuda, ContinuousBatchingMatchesOneBatch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto model = aha::load_model(kModel, {torch::Device("cuda"), dtype});
    aha::RolloutRequest request;
    for (int i = 0; i < 12; ++i) {
      std::vector<int64_t> prompt;
      for (int t = 0; t <= (i * 7) % 23; ++t) prompt.push_back(1 + (i * 31 + t * 17) % 250);
      request.prompts.push_back(prompt);
    }
    request.group_size = 2;
    request.settings.sampler.temperature = 1.0;  // the fused sampler
    request.settings.stop.max_new_tokens = 40;
    request.settings.stop.eos_token_ids = {5, 6, 7};
    request.settings.seed = 3;
    for (int k = 0; k < 24; ++k) request.max_new_tokens_each.push_back(k % 3 == 0 ? 40 : 5 + (k * 11) % 30);
    aha::EngineOptions options;
    options.span_bucket = 16;
    auto whole = aha::RolloutEngine(*model, options).generate(request);
    options.max_rows = 4;
    auto continuous = aha::RolloutEngine(*model, options).generate(request);
    EXPECT_EQ(continuous.stats.refills, 10);
    EXPECT_GT(continuous.stats.graphs_captured, 1);
    ASSERT_EQ(continuous.completions.size(), whole.completions.size());
    int same = 0;
    int64_t compared = 0;
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < whole.completions.size(); ++i) {
      const auto& c = continuous.completions[i];
      const auto& w = whole.completions[i];
      same += c.tokens == w.tokens;
      // Up to the first token where they part, the two runs compute the same distributions.
      for (size_t t = 0; t < c.tokens.size() && t < w.tokens.size() && c.tokens[t] == w.tokens[t]; ++t, ++compared)
        EXPECT_NEAR(c.logprobs[t], w.logprobs[t], dtype == torch::kFloat32 ? 1e-4 : 0.05) << "completion " << i << " token " << t;
      auto ids = request.prompts[c.prompt_index];
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto input = torch::tensor(ids, torch::kInt64).view({1, -1}).cuda();
      auto expected = model->token_logprobs(input, {}, {}, 1.0).cpu();
      const int64_t n = static_cast<int64_t>(c.tokens.size());
      auto tail = expected[0].narrow(0, expected.size(1) - n, n);
      const double tolerance = dtype == torch::kFloat32 ? 1e-4 : 0.1;  // bf16: decode kernels vs SDPA
      EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), tolerance) << "completion " << i;
    }
    // A wrong slot, step or stream would change nearly every completion; bf16 kernels for other
    // batch shapes round differently, and a near-tie then parts two completions.
    EXPECT_GE(same, dtype == torch::kFloat32 ? 20 : 12) << c10::toString(dtype);
    EXPECT_GE(compared, 150) << c10::toString(dtype);
  }
}

}  // namespace
