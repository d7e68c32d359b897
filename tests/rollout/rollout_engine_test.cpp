// The rollout engine against independent references: greedy tokens from transformers'
// generate() (fixtures), teacher-forced log-probs from policy/ for sampled completions, and
// hand-built EOS / stop-string cases; plus seeds, G sharing and left padding.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"
#include "rollout/rollout_engine.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

struct Golden {
  std::vector<std::vector<int64_t>> prompts, tokens;
};

Golden read_golden(const std::string& model) {
  aha::SafetensorsFile file(kFixtures / model / "expected.safetensors");
  Golden g;
  for (int i = 0; file.find("greedy_prompt_" + std::to_string(i)); ++i) {
    g.prompts.push_back(to_vector(file.load("greedy_prompt_" + std::to_string(i))));
    g.tokens.push_back(to_vector(file.load("greedy_tokens_" + std::to_string(i))));
  }
  return g;
}

aha::RolloutRequest greedy_request(const Golden& g, int64_t group) {
  aha::RolloutRequest r;
  r.prompts = g.prompts;
  r.group_size = group;
  r.settings.sampler.temperature = 0;
  r.settings.stop.max_new_tokens = static_cast<int64_t>(g.tokens[0].size());
  r.settings.stop.ignore_eos = true;  // the fixtures disable EOS
  return r;
}

class GreedyParity : public ::testing::TestWithParam<std::string> {};

// All prompts of a model in one batch (different lengths, so left padding), two samples each
// sharing their prompt's prefill.
TEST_P(GreedyParity, MatchesTransformersGenerate) {
  auto model = aha::load_model(kFixtures / GetParam());
  auto golden = read_golden(GetParam());
  ASSERT_EQ(golden.prompts.size(), 3u);
  aha::EngineOptions options;
  options.span_bucket = 8;  // attention spans shorter than the cache, growing during decode
  aha::RolloutEngine engine(*model, options);
  auto result = engine.generate(greedy_request(golden, 2));
  ASSERT_EQ(result.completions.size(), 6u);
  for (const auto& c : result.completions) {
    EXPECT_EQ(c.tokens, golden.tokens[c.prompt_index]) << "prompt " << c.prompt_index << " sample " << c.sample_index;
    EXPECT_EQ(c.finish_reason, aha::FinishReason::kLength);
    EXPECT_EQ(c.logprobs.size(), c.tokens.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GreedyParity,
                         ::testing::Values("qwen2_gqa_tied", "qwen2_mha_untied_sharded", "llama_mqa_headdim",
                                           "llama_bias_llama3rope", "llama_linear_rope", "qwen3_gqa_headdim",
                                           "qwen3_bias_mha_untied", "qwen3_moe_top2_norm", "qwen3_moe_top1_sparse2",
                                           "qwen3_moe_mlponly_mqa"));

aha::RolloutRequest sampled_request(uint64_t seed) {
  aha::RolloutRequest r;
  r.prompts = {{1, 17, 99, 4, 200}, {1, 3, 3, 3, 250, 9, 8, 7, 6}, {1, 42}};
  r.group_size = 4;
  r.settings.sampler.temperature = 0.7;
  r.settings.sampler.top_k = 50;
  r.settings.sampler.top_p = 0.9;
  r.settings.stop.max_new_tokens = 12;
  r.settings.stop.eos_token_ids = {5, 6};
  r.settings.seed = seed;
  return r;
}

// The behaviour log-probs equal the learner's teacher-forced log-probs of the same tokens at
// the same temperature (fp32, CPU), whatever the truncation used for sampling.
TEST(RolloutEngine, BehaviourLogprobsMatchTeacherForcing) {
  for (const std::string name : {"qwen2_gqa_tied", "llama_bias_llama3rope"}) {
    auto model = aha::load_model(kFixtures / name);
    aha::EngineOptions options;
    options.prefill_tokens = 10;  // prompts are padded to 9 tokens: one prompt per prefill chunk
    aha::RolloutEngine engine(*model, options);
    auto request = sampled_request(123);
    auto result = engine.generate(request);
    ASSERT_EQ(result.completions.size(), 12u);
    EXPECT_EQ(result.stats.prefilled_prompts, 3);
    torch::NoGradGuard no_grad;
    for (const auto& c : result.completions) {
      auto ids = request.prompts[c.prompt_index];
      ids.insert(ids.end(), c.tokens.begin(), c.tokens.end());
      auto expected = model->token_logprobs(torch::tensor(ids, torch::kInt64).view({1, -1}), {}, {}, 0.7);
      const int64_t n = static_cast<int64_t>(c.tokens.size());
      auto tail = expected[0].narrow(0, expected.size(1) - n, n);
      auto got = torch::tensor(c.logprobs);
      EXPECT_LE((got - tail).abs().max().item<double>(), 2e-5) << name << " prompt " << c.prompt_index;
    }
  }
}

TEST(RolloutEngine, SeedsReproduceSamples) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  aha::RolloutEngine engine(*model);
  auto a = engine.generate(sampled_request(5));
  auto b = engine.generate(sampled_request(5));
  auto c = engine.generate(sampled_request(6));
  EXPECT_EQ(a.stats.prefilled_prompts, 3);  // 3 prompts x G = 4 rows, one prefill per prompt
  int differing = 0;
  std::set<std::vector<int64_t>> distinct_in_group;
  for (size_t i = 0; i < a.completions.size(); ++i) {
    EXPECT_EQ(a.completions[i].tokens, b.completions[i].tokens);
    EXPECT_EQ(a.completions[i].logprobs, b.completions[i].logprobs);
    differing += a.completions[i].tokens != c.completions[i].tokens;
    if (a.completions[i].prompt_index == 0) distinct_in_group.insert(a.completions[i].tokens);
  }
  EXPECT_GT(differing, 6);
  // The G samples of one prompt share its prefill but draw their own tokens.
  EXPECT_GE(distinct_in_group.size(), 3u);
}

// A sample does not depend on the other prompts in its batch (their lengths, so the padding,
// and when they finish), only on the seed and its own (prompt index, sample index).
TEST(RolloutEngine, SamplesDoNotDependOnTheRestOfTheBatch) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  aha::RolloutEngine engine(*model);
  auto one = sampled_request(9);
  auto other = sampled_request(9);
  other.prompts[1] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  other.prompts[2] = {1, 5};
  auto a = engine.generate(one);
  auto b = engine.generate(other);
  for (int j = 0; j < 4; ++j) {
    EXPECT_EQ(a.completions[j].tokens, b.completions[j].tokens) << "sample " << j;
    EXPECT_EQ(a.completions[j].finish_reason, b.completions[j].finish_reason);
  }
}

// Several EOS ids; rows that finish at different times are compacted away while the one
// still running keeps producing transformers' tokens.
TEST(RolloutEngine, SeveralEosIdsAndCompaction) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  auto golden = read_golden("qwen2_gqa_tied");
  // prompt 0: 200 200 200 124 ...; prompt 1: 38 244 ... 131 ...; prompt 2: 22 22 ...
  auto request = greedy_request(golden, 1);
  request.settings.stop.ignore_eos = false;
  request.settings.stop.eos_token_ids = {124, 22};
  aha::RolloutEngine engine(*model);
  auto result = engine.generate(request);
  const auto& c = result.completions;
  EXPECT_EQ(c[0].tokens, (std::vector<int64_t>{200, 200, 200, 124}));
  EXPECT_EQ(c[0].finish_reason, aha::FinishReason::kEos);
  EXPECT_EQ(c[2].tokens, (std::vector<int64_t>{22}));
  EXPECT_EQ(c[2].finish_reason, aha::FinishReason::kEos);
  EXPECT_EQ(c[1].tokens, golden.tokens[1]);
  EXPECT_EQ(c[1].finish_reason, aha::FinishReason::kLength);
  EXPECT_EQ(result.stats.compactions, 2);  // 3 rows -> 2 -> 1
  EXPECT_EQ(result.stats.generated_tokens, 4 + 1 + 16);
  EXPECT_LT(result.stats.row_steps, 3 * 15);
}

// Stop strings on decoded text, across token boundaries; the text keeps the stop string and
// drops a final EOS.
TEST(RolloutEngine, StopStringsAcrossTokens) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  auto golden = read_golden("qwen2_gqa_tied");
  aha::TextDecoder decoder;
  decoder.token_bytes = [](int64_t id) { return "<" + std::to_string(id) + ">"; };
  decoder.decode = [&](const std::vector<int64_t>& ids) {
    std::string text;
    for (auto id : ids) text += decoder.token_bytes(id);
    return text;
  };
  aha::RolloutEngine engine(*model, {}, decoder);
  auto request = greedy_request(golden, 1);
  request.settings.stop.stop_strings = {"0><2", "4><13"};  // 200|200, 244|...|131 boundaries
  request.settings.stop.ignore_eos = false;
  request.settings.stop.eos_token_ids = {22};
  auto result = engine.generate(request);
  const auto& c = result.completions;
  EXPECT_EQ(c[0].tokens, (std::vector<int64_t>{200, 200}));
  EXPECT_EQ(c[0].finish_reason, aha::FinishReason::kStop);
  EXPECT_EQ(c[0].text, "<200><200>");
  ASSERT_EQ(c[1].tokens.size(), 12u);  // 38, 244 x 10, 131
  EXPECT_EQ(c[1].tokens.back(), 131);
  EXPECT_EQ(c[1].finish_reason, aha::FinishReason::kStop);
  EXPECT_EQ(c[2].finish_reason, aha::FinishReason::kEos);
  EXPECT_EQ(c[2].text, "");
}

TEST(RolloutEngine, RejectsBadRequests) {
  auto model = aha::load_model(kFixtures / "qwen2_gqa_tied");
  aha::RolloutEngine engine(*model);
  auto request = sampled_request(1);
  request.prompts[1] = {};
  EXPECT_THROW(engine.generate(request), aha::Error);
  request = sampled_request(1);
  request.prompts[0][1] = 256;  // vocabulary is 256
  EXPECT_THROW(engine.generate(request), aha::Error);
  request = sampled_request(1);
  request.group_size = 0;
  EXPECT_THROW(engine.generate(request), aha::Error);
  request = sampled_request(1);
  request.settings.stop.stop_strings = {"</answer>"};  // no decoder
  EXPECT_THROW(engine.generate(request), aha::Error);
  request = sampled_request(1);
  request.prompts.clear();
  EXPECT_THROW(engine.generate(request), aha::Error);
}

}  // namespace
