// The fused CUDA sampler against independent expectations: sampled frequencies against the
// softmax at the temperature, log-probs against ATen's log_softmax, greedy against argmax (ties
// to the first index), draws independent of the batch. The dispatch test runs everywhere; the
// kernel tests are skipped without CUDA.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "rollout/sampler.h"

namespace {

using aha::SamplerSettings;

torch::Tensor keys_for(int64_t n, uint64_t seed) {
  std::vector<int64_t> keys;
  for (int64_t i = 0; i < n; ++i) keys.push_back(aha::sample_stream_key(seed, i, i % 3));
  return torch::tensor(keys, torch::kInt64);
}

torch::Tensor step_of(int64_t step, const torch::Device& device) {
  return torch::tensor({step}, torch::kInt64).to(device);
}

TEST(CudaSampler, DispatchTakesTheKernelOnlyForUntruncatedCudaLogits) {
  auto cpu = torch::zeros({2, 8});
  EXPECT_FALSE(aha::uses_fused_sampler(cpu, SamplerSettings{}));
  if (!torch::cuda::is_available()) {
    EXPECT_THROW(aha::sample_tokens_fused(cpu, 1.0, keys_for(2, 1), step_of(0, torch::kCPU)), aha::Error);
    GTEST_SKIP() << "no CUDA device";
  }
  auto gpu = cpu.cuda();
  EXPECT_TRUE(aha::uses_fused_sampler(gpu, SamplerSettings{}));
  EXPECT_TRUE(aha::uses_fused_sampler(gpu.to(torch::kBFloat16), SamplerSettings{0.0, 0, 1.0}));
  EXPECT_TRUE(aha::uses_fused_sampler(gpu, SamplerSettings{1.0, 8, 1.0}));  // top-k = V: no truncation
  EXPECT_FALSE(aha::uses_fused_sampler(gpu, SamplerSettings{1.0, 3, 1.0}));
  EXPECT_FALSE(aha::uses_fused_sampler(gpu, SamplerSettings{1.0, 0, 0.9}));
  EXPECT_FALSE(aha::uses_fused_sampler(gpu.to(torch::kFloat64), SamplerSettings{}));
}

// A few tokens carry the mass, spread over a vocabulary of 1000 (several threads' ranges, and
// a tail that is not a multiple of four); the rest is -inf or negligible.
TEST(CudaSampler, SampledFrequenciesMatchTheSoftmaxAtTheTemperature) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t n = 20000, V = 1001;
  const std::vector<int64_t> where = {3, 400, 401, 998, 1000};
  const std::vector<double> logit = {0.0, 1.0, -0.5, 2.0, 0.5};
  for (double temperature : {1.0, 0.7}) {
    for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      auto row = torch::full({V}, -30.0f);
      row.narrow(0, 10, 300).fill_(-std::numeric_limits<float>::infinity());
      for (size_t k = 0; k < where.size(); ++k) row[where[k]] = logit[k];
      auto logits = row.to(dtype).view({1, V}).expand({n, V}).contiguous().cuda();
      auto out = aha::sample_tokens_fused(logits, temperature, keys_for(n, 7).cuda(), step_of(4, torch::kCUDA));
      auto counts = out.tokens.cpu().bincount({}, V);
      auto p = torch::softmax(row.to(dtype).to(torch::kFloat64) / temperature, 0);
      int64_t listed = 0;
      for (size_t k = 0; k < where.size(); ++k) {
        const double pk = p[where[k]].item<double>(), sd = std::sqrt(n * pk * (1 - pk));
        const int64_t c = counts[where[k]].item<int64_t>();
        listed += c;
        EXPECT_NEAR(c, n * pk, 4 * sd) << "token " << where[k] << " T " << temperature;
      }
      EXPECT_EQ(listed, n) << "a token with (next to) no mass was drawn";
      auto expected_lp = torch::log_softmax(row.to(dtype).to(torch::kFloat32) / temperature, 0).cuda();
      auto lp_error = (out.logprobs - expected_lp.index_select(0, out.tokens)).abs().max().item<double>();
      EXPECT_LT(lp_error, 1e-5) << "T " << temperature;
    }
  }
}

TEST(CudaSampler, LogProbsMatchLogSoftmaxAndDrawsDoNotDependOnTheBatch) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 48, V = 151936;
  torch::manual_seed(5);
  auto logits32 = torch::randn({B, V}).cuda();  // thousands of plausible tokens per row
  auto keys = keys_for(B, 9).cuda();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    auto logits = logits32.to(dtype);
    for (double temperature : {1.0, 0.6}) {
      auto out = aha::sample_tokens_fused(logits, temperature, keys, step_of(11, torch::kCUDA));
      auto learner = torch::log_softmax(logits.to(torch::kFloat32) / temperature, -1);
      auto expected = learner.gather(-1, out.tokens.view({B, 1})).view({B});
      EXPECT_LT((out.logprobs - expected).abs().max().item<double>(), 2e-5) << "T " << temperature;
      // The same rows in another order and in a smaller batch draw the same tokens.
      auto order = torch::randperm(B, torch::kInt64).cuda().narrow(0, 0, B / 2);
      auto part = aha::sample_tokens_fused(logits.index_select(0, order), temperature, keys.index_select(0, order),
                                           step_of(11, torch::kCUDA));
      EXPECT_TRUE(torch::equal(part.tokens, out.tokens.index_select(0, order)));
      // Another step draws anew: nearly every row changes.
      auto next = aha::sample_tokens_fused(logits, temperature, keys, step_of(12, torch::kCUDA));
      EXPECT_GT(next.tokens.ne(out.tokens).sum().item<int64_t>(), B - 3);
    }
  }
}

TEST(CudaSampler, GreedyIsTheFirstArgmaxWithItsLogSoftmax) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 16, V = 151936;
  torch::manual_seed(6);
  auto logits = (torch::randn({B, V}) * 2).to(torch::kBFloat16);
  // Ties across threads' ranges and within one group of four: the first index wins, as argmax.
  logits[0][9000] = 20.0f;
  logits[0][70] = 20.0f;
  logits[1][5] = 20.0f;
  logits[1][6] = 20.0f;
  logits[2][V - 1] = 20.0f;
  auto gpu = logits.cuda();
  auto out = aha::sample_tokens_fused(gpu, 0.0, keys_for(B, 1).cuda(), step_of(0, torch::kCUDA));
  auto expected = logits.to(torch::kFloat32).argmax(-1);
  EXPECT_TRUE(torch::equal(out.tokens.cpu(), expected));
  EXPECT_EQ(out.tokens[0].item<int64_t>(), 70);
  EXPECT_EQ(out.tokens[1].item<int64_t>(), 5);
  EXPECT_EQ(out.tokens[2].item<int64_t>(), V - 1);
  // Against the exact (float64) log-softmax; ATen's float32 one on the CPU is itself 4.7e-5 off
  // here, so it gets the learner's tolerance.
  auto exact = torch::log_softmax(logits.to(torch::kFloat64), -1).gather(-1, expected.view({B, 1})).view({B});
  EXPECT_LT((out.logprobs.cpu().to(torch::kFloat64) - exact).abs().max().item<double>(), 2e-5);
  auto lp = torch::log_softmax(logits.to(torch::kFloat32), -1).gather(-1, expected.view({B, 1})).view({B});
  EXPECT_LT((out.logprobs.cpu() - lp).abs().max().item<double>(), 1e-4);
  // sample_rows takes the same kernel for greedy CUDA logits.
  SamplerSettings greedy;
  greedy.temperature = 0;
  auto via_rows = aha::sample_rows(gpu, greedy, keys_for(B, 1).cuda(), step_of(0, torch::kCUDA));
  EXPECT_TRUE(torch::equal(via_rows.tokens.cpu(), expected));
}

// Strided rows (a narrow of a larger batch) read the right logits.
TEST(CudaSampler, StridedRowsAreRead) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto logits = torch::full({6, 37}, -5.0f);
  for (int64_t r = 0; r < 6; ++r) logits[r][r * 5] = 5.0f;
  auto gpu = logits.cuda().narrow(1, 1, 35);  // row stride 37, rows start misaligned for vector loads
  auto out = aha::sample_tokens_fused(gpu, 0.0, keys_for(6, 1).cuda(), step_of(0, torch::kCUDA));
  auto expected = logits.narrow(1, 1, 35).argmax(-1);
  EXPECT_TRUE(torch::equal(out.tokens.cpu(), expected));
}

}  // namespace
