// Sampling: hand-worked distributions for greedy, temperature, top-k and top-p, untruncated
// behaviour log-probs, and the counter-based uniforms' distribution.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "rollout/sampler.h"

namespace {

using aha::SamplerSettings;

torch::Tensor logits_of(const std::vector<double>& probs) {
  return torch::tensor(probs, torch::kFloat64).log().to(torch::kFloat32).view({1, -1});
}

int64_t draw(const torch::Tensor& logits, const SamplerSettings& s, float u, float* logprob = nullptr) {
  auto out = aha::sample_tokens(logits, s, torch::tensor({u}));
  if (logprob) *logprob = out.logprobs[0].item<float>();
  return out.tokens[0].item<int64_t>();
}

TEST(Sampler, GreedyTakesTheArgmaxAndReportsItsLogSoftmax) {
  auto logits = torch::tensor({{1.0f, 3.0f, 2.0f}, {0.5f, -1.0f, 0.0f}});
  SamplerSettings s;
  s.temperature = 0;
  auto out = aha::sample_tokens(logits, s, torch::tensor({0.999f, 0.001f}));
  EXPECT_EQ(out.tokens[0].item<int64_t>(), 1);
  EXPECT_EQ(out.tokens[1].item<int64_t>(), 0);
  const double z = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0));
  EXPECT_NEAR(out.logprobs[0].item<float>(), 3.0 - z, 1e-6);
}

TEST(Sampler, InverseCdfOverTheFullDistribution) {
  auto logits = logits_of({0.1, 0.2, 0.7});  // cdf 0.1, 0.3, 1.0
  SamplerSettings s;
  EXPECT_EQ(draw(logits, s, 0.05f), 0);
  EXPECT_EQ(draw(logits, s, 0.25f), 1);
  EXPECT_EQ(draw(logits, s, 0.31f), 2);
  EXPECT_EQ(draw(logits, s, 0.9999999f), 2);
}

TEST(Sampler, TemperatureScalesTheLogprobs) {
  auto logits = torch::tensor({{1.0f, 2.0f, 3.0f}});
  SamplerSettings s;
  s.temperature = 0.5;  // scaled logits 2, 4, 6
  float lp = 0;
  const int64_t token = draw(logits, s, 0.01f, &lp);
  const double z = std::log(std::exp(2.0) + std::exp(4.0) + std::exp(6.0));
  EXPECT_EQ(token, 0);  // p0 = e^2 / (e^2 + e^4 + e^6) = 0.0158 > 0.01
  EXPECT_NEAR(lp, 2.0 - z, 1e-5);
}

TEST(Sampler, TopKSamplesAmongTheKBestButReportsUntruncatedLogprobs) {
  auto logits = logits_of({0.1, 0.2, 0.7});
  SamplerSettings s;
  s.top_k = 2;  // keeps 0.2 and 0.7 (mass 0.9): token 1 for u * 0.9 < 0.2
  float lp = 0;
  EXPECT_EQ(draw(logits, s, 0.2f, &lp), 1);
  EXPECT_NEAR(lp, std::log(0.2), 1e-6);
  EXPECT_EQ(draw(logits, s, 0.3f), 2);
  EXPECT_EQ(draw(logits, s, 0.0000001f), 1);  // never token 0
  s.top_k = 1;
  EXPECT_EQ(draw(logits, s, 0.0000001f), 2);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  auto logits = logits_of({0.1, 0.2, 0.7});  // sorted 0.7, 0.2, 0.1; top_p 0.75 keeps 0.7 and 0.2
  SamplerSettings s;
  s.top_p = 0.75;
  float lp = 0;
  EXPECT_EQ(draw(logits, s, 0.5f, &lp), 2);
  EXPECT_NEAR(lp, std::log(0.7), 1e-6);
  EXPECT_EQ(draw(logits, s, 0.8f, &lp), 1);  // 0.8 * 0.9 = 0.72 > 0.7
  EXPECT_NEAR(lp, std::log(0.2), 1e-6);
  EXPECT_EQ(draw(logits, s, 0.9999999f), 1);  // never the truncated token 0
  s.top_p = 0.5;                               // the best token alone already reaches it
  EXPECT_EQ(draw(logits, s, 0.9999999f), 2);
  s.top_k = 1;
  s.top_p = 0.99;
  EXPECT_EQ(draw(logits, s, 0.9999999f), 2);
}

TEST(Sampler, CounterUniformsAreDeterministicAndSpreadEvenly) {
  const int64_t n = 20000;
  std::vector<int64_t> keys;
  for (int64_t i = 0; i < n; ++i) keys.push_back(aha::sample_stream_key(7, i / 8, i % 8));
  auto key_tensor = torch::tensor(keys, torch::kInt64);
  auto u0 = aha::counter_uniforms(key_tensor, torch::tensor({int64_t{0}}));
  auto u0_again = aha::counter_uniforms(key_tensor, torch::tensor({int64_t{0}}));
  auto u1 = aha::counter_uniforms(key_tensor, torch::tensor({int64_t{1}}));
  EXPECT_TRUE(torch::equal(u0, u0_again));
  EXPECT_GT(u0.min().item<float>(), 0.0f);
  EXPECT_LT(u0.max().item<float>(), 1.0f);
  EXPECT_NEAR(u0.mean().item<double>(), 0.5, 0.01);      // sd of the mean: 0.002
  EXPECT_NEAR(u0.var().item<double>(), 1.0 / 12, 0.003);
  EXPECT_LT((u0 == u1).sum().item<int64_t>(), 5);
  // Uncorrelated across steps and across neighbouring streams.
  auto centred0 = u0 - 0.5, centred1 = u1 - 0.5;
  EXPECT_LT(std::abs((centred0 * centred1).mean().item<double>() * 12), 0.05);
  EXPECT_LT(std::abs((centred0.narrow(0, 0, n - 1) * centred0.narrow(0, 1, n - 1)).mean().item<double>() * 12), 0.05);
  // Ten equal bins hold 2000 +- 4 sd (sd = 42) each.
  auto bins = (u0 * 10).floor().to(torch::kInt64).bincount({}, 10);
  for (int64_t b = 0; b < 10; ++b) EXPECT_NEAR(bins[b].item<int64_t>(), 2000, 170) << "bin " << b;
}

TEST(Sampler, SampledFrequenciesMatchTheDistribution) {
  const int64_t n = 20000;
  std::vector<int64_t> keys;
  for (int64_t i = 0; i < n; ++i) keys.push_back(aha::sample_stream_key(3, i, 0));
  auto u = aha::counter_uniforms(torch::tensor(keys, torch::kInt64), torch::tensor({int64_t{5}}));
  const std::vector<double> p = {0.05, 0.15, 0.3, 0.5};
  auto logits = logits_of(p).expand({n, 4});
  auto counts = aha::sample_tokens(logits, SamplerSettings{}, u).tokens.bincount({}, 4);
  for (int64_t k = 0; k < 4; ++k) {
    const double sd = std::sqrt(n * p[k] * (1 - p[k]));
    EXPECT_NEAR(counts[k].item<int64_t>(), n * p[k], 4 * sd) << "token " << k;
  }
}

// Large vocabularies are searched in blocks: the drawn token's interval of the float64 CDF
// holds u, whatever the block width (151936 = 1187 x 128; 1009 is prime: blocks of one).
TEST(Sampler, BlockwiseInverseCdfAgreesWithTheFullCdf) {
  for (int64_t V : {151936, 1009, 4096}) {
    const int64_t B = 24;
    torch::manual_seed(V);
    auto logits = torch::randn({B, V}) * 4;
    std::vector<int64_t> keys;
    for (int64_t b = 0; b < B; ++b) keys.push_back(aha::sample_stream_key(11, b, 0));
    auto u = aha::counter_uniforms(torch::tensor(keys, torch::kInt64), torch::tensor({int64_t{0}}));
    for (double temperature : {1.0, 0.6}) {
      SamplerSettings s;
      s.temperature = temperature;
      auto out = aha::sample_tokens(logits, s, u);
      auto p = torch::softmax(logits.to(torch::kFloat64) / temperature, -1);
      auto cdf = p.cumsum(-1);
      auto learner = torch::log_softmax(logits / temperature, -1);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t t = out.tokens[b].item<int64_t>();
        const double lo = t > 0 ? cdf[b][t - 1].item<double>() : 0.0, hi = cdf[b][t].item<double>();
        const double target = u[b].item<double>();
        EXPECT_GE(target, lo - 1e-5) << "V " << V << " row " << b;
        EXPECT_LE(target, hi + 1e-5) << "V " << V << " row " << b;
        // float32 sums over 150k terms carry ~2e-5 relative error, as the learner's do: the
        // learner's float32 log_softmax agrees tightly, the exact float64 value loosely.
        EXPECT_NEAR(out.logprobs[b].item<double>(), learner[b][t].item<double>(), 2e-6);
        EXPECT_NEAR(out.logprobs[b].item<double>(), std::log(p[b][t].item<double>()), 1e-4);
      }
    }
    SamplerSettings k;
    k.top_k = 3;
    auto top3 = std::get<1>(logits.topk(3, -1));
    auto tokens = aha::sample_tokens(logits, k, u).tokens;
    EXPECT_TRUE((top3 == tokens.view({B, 1})).any(-1).all().item<bool>()) << "V " << V;
  }
}

TEST(Sampler, StreamKeysDependOnSeedPromptAndSample) {
  const int64_t base = aha::sample_stream_key(1, 2, 3);
  EXPECT_EQ(base, aha::sample_stream_key(1, 2, 3));
  EXPECT_NE(base, aha::sample_stream_key(2, 2, 3));
  EXPECT_NE(base, aha::sample_stream_key(1, 3, 3));
  EXPECT_NE(base, aha::sample_stream_key(1, 2, 4));
  EXPECT_NE(aha::sample_stream_key(0, 1, 0), aha::sample_stream_key(0, 0, 1));
  EXPECT_GE(base, 0);
}

TEST(Sampler, RejectsBadSettings) {
  SamplerSettings s;
  s.temperature = -1;
  EXPECT_THROW(aha::validate(s), aha::Error);
  s = {};
  s.top_p = 0;
  EXPECT_THROW(aha::validate(s), aha::Error);
  s.top_p = 1.5;
  EXPECT_THROW(aha::validate(s), aha::Error);
  s = {};
  s.top_k = -3;
  EXPECT_THROW(aha::validate(s), aha::Error);
}

// Per-row steps (continuous batching: rows that joined at different times) draw what each row
// draws at its own step alone.
TEST(Sampler, PerRowStepsDrawAsEachRowAlone) {
  std::vector<int64_t> keys, steps;
  for (int64_t i = 0; i < 6; ++i) {
    keys.push_back(aha::sample_stream_key(11, i, i % 2));
    steps.push_back(i * 7 + 1);
  }
  auto together = aha::counter_uniforms(torch::tensor(keys, torch::kInt64), torch::tensor(steps, torch::kInt64));
  ASSERT_EQ(together.size(0), 6);
  for (int64_t i = 0; i < 6; ++i) {
    auto alone = aha::counter_uniforms(torch::tensor({keys[i]}, torch::kInt64), torch::tensor({steps[i]}, torch::kInt64));
    EXPECT_EQ(together[i].item<float>(), alone[0].item<float>()) << i;
  }
  // And differ from all rows at one shared step.
  auto shared = aha::counter_uniforms(torch::tensor(keys, torch::kInt64), torch::tensor({steps[0]}, torch::kInt64));
  EXPECT_EQ(shared[0].item<float>(), together[0].item<float>());
  EXPECT_GT((shared != together).sum().item<int64_t>(), 3);
}

}  // namespace
