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

}  // namespace
