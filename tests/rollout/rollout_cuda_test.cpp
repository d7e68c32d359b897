// On a CUDA machine: the graph-captured decode gives transformers' greedy tokens, the same
// samples as the eager path, and log-probs that match teacher forcing. Skipped without CUDA.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/model_io.h"
#include "policy/safetensors.h"
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
  for (size_t i = 0; i < with_graphs.completions.size(); ++i) {
    const auto& c = with_graphs.completions[i];
    EXPECT_EQ(c.tokens, without.completions[i].tokens) << "completion " << i;
    auto ids = sampled.prompts[c.prompt_index];
    ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
    auto expected = model->token_logprobs(torch::tensor(ids, torch::kInt64).view({1, -1}).cuda(), {}, {}, 0.8).cpu();
    const int64_t n = static_cast<int64_t>(c.tokens.size());
    auto tail = expected[0].narrow(0, expected.size(1) - n, n);
    EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), 1e-4) << "completion " << i;
  }

  // Without top-p the fused sampling kernel draws (sampler.h): graphs and the eager path agree,
  // and the behaviour log-probs are the learner's.
  aha::RolloutRequest untruncated = sampled;
  untruncated.settings.sampler.top_p = 1.0;
  untruncated.settings.sampler.temperature = 1.0;
  auto fused_graphs = engine.generate(untruncated);
  auto fused_eager = aha::RolloutEngine(*model, eager).generate(untruncated);
  for (size_t i = 0; i < fused_graphs.completions.size(); ++i) {
    const auto& c = fused_graphs.completions[i];
    EXPECT_EQ(c.tokens, fused_eager.completions[i].tokens) << "completion " << i;
    auto ids = untruncated.prompts[c.prompt_index];
    ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
    auto expected = model->token_logprobs(torch::tensor(ids, torch::kInt64).view({1, -1}).cuda(), {}, {}, 1.0).cpu();
    const int64_t n = static_cast<int64_t>(c.tokens.size());
    auto tail = expected[0].narrow(0, expected.size(1) - n, n);
    EXPECT_LE((torch::tensor(c.logprobs) - tail).abs().max().item<double>(), 1e-4) << "completion " << i;
  }

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

}  // namespace
