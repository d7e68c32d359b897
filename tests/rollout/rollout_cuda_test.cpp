// On a CUDA machine: the graph-captured decode gives transformers' greedy tokens, the same
// samples as the eager path, and log-probs that match teacher forcing; continuous batching
// gives the completions of one batch; a row's first slot (KVCache::first_slots) leaves the
// decode attention kernel's result as a cleared key mask gives it, without reading the slots
// below it. Skipped without CUDA.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "policy/model/model_config.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"
#include "rollout/rollout_engine.h"

#ifdef AHA_WITH_CUDA
#include <c10/cuda/CUDAStream.h>

#include "policy/model/cuda_decode.h"
#include "policy/model/cuda_decode_args.h"
#endif

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

#ifdef AHA_WITH_CUDA
// The decode attention kernel with each row's first slot against the same kernel without it
// and with the key mask cleared below it: the same output, bit for bit with one key range
// (decode_attention's contract), to the last bf16 rounding with several. The first slots sit on
// and beside tile (32) and warp-round (128) edges, at the new slot, and past it (nothing to
// attend to: zeros). With the first slots the key mask is set below them (only first_slot
// excludes those slots), and whole tiles below them hold NaN, which a read would spread into the
// output (0 * NaN); the control without first slots over the same NaN cache shows that it does.
TEST(RolloutCuda, DecodeAttentionFirstSlotEqualsAClearedMask) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  struct Case {
    int64_t head_dim, rep, rows;
    int splits;  // 0: decode_attention_splits' choice
  };
  for (const auto& c : {Case{64, 7, 300, 1}, Case{128, 4, 40, 1}, Case{32, 2, 17, 1}, Case{64, 7, 5, 3},
                        Case{128, 8, 4, 0}, Case{32, 2, 17, 0}}) {
    const int64_t D = c.head_dim, rep = c.rep, B = c.rows, kvh = 2, nh = kvh * rep;
    const int64_t capacity = 640, span = 608, slot = 590;
    const std::string where = "D " + std::to_string(D) + " rep " + std::to_string(rep) + " rows " + std::to_string(B) +
                              " splits " + std::to_string(c.splits);
    torch::manual_seed(D * 100 + rep * 10 + B);
    auto cuda = torch::TensorOptions().device(torch::kCUDA);
    auto bf16 = cuda.dtype(torch::kBFloat16);
    auto q = torch::randn({B, nh, D}, bf16);
    auto keys = torch::randn({B, kvh, capacity, D}, bf16);
    auto values = torch::randn({B, kvh, capacity, D}, bf16);
    const std::vector<int64_t> firsts = {0, 1, 31, 32, 33, 127, 128, 129, 255, 256, 300, 415, 589, 590, 591};
    std::vector<int64_t> first(B);
    for (int64_t b = 0; b < B; ++b) first[b] = firsts[b % firsts.size()];
    auto mask = torch::rand({B, capacity}) > 0.2;
    mask.select(1, slot).fill_(true);  // the new token's own slot
    auto cleared = mask.clone(), open = mask.clone();
    auto poisoned_keys = keys.clone(), poisoned_values = values.clone();
    for (int64_t b = 0; b < B; ++b) {
      cleared[b].narrow(0, 0, first[b]).fill_(false);
      open[b].narrow(0, 0, first[b]).fill_(true);
      const int64_t unread = std::min(first[b], slot + 1) / 32 * 32;  // whole tiles below the first slot
      if (unread > 0) {
        poisoned_keys[b].narrow(1, 0, unread).fill_(NAN);
        poisoned_values[b].narrow(1, 0, unread).fill_(NAN);
      }
    }
    cleared = cleared.to(torch::kCUDA);
    open = open.to(torch::kCUDA);
    auto slot_t = torch::tensor({slot}, cuda.dtype(torch::kInt64));
    auto first_t = torch::tensor(first, torch::kInt64).to(torch::kCUDA);
    const int splits = c.splits > 0 ? c.splits : aha::cuda::decode_attention_splits(B, kvh, span);
    auto run = [&](const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& key_mask,
                   const torch::Tensor& first_slot) {
      auto out = torch::empty({B, nh, D}, bf16);
      auto partial_out = torch::empty({B * nh * splits * D}, cuda.dtype(torch::kFloat32));
      auto partial_lse = torch::empty({B * nh * splits}, cuda.dtype(torch::kFloat32));
      auto a = aha::decode_attention_args(q, k, v, key_mask, slot_t, span, out, first_slot);
      a.splits = splits;
      a.partial_out = partial_out.data_ptr<float>();
      a.partial_lse = partial_lse.data_ptr<float>();
      const char* failure =
          aha::cuda::launch_decode_attention(aha::cuda::Dtype::kBFloat16, a, c10::cuda::getCurrentCUDAStream().stream());
      EXPECT_EQ(failure, nullptr) << where << ": " << failure;
      return out.to(torch::kFloat64);
    };
    auto without = run(keys, values, cleared, {});
    auto with = run(poisoned_keys, poisoned_values, open, first_t);
    ASSERT_FALSE(without.isnan().any().item<bool>()) << where;
    ASSERT_FALSE(with.isnan().any().item<bool>()) << where << ": a slot below a first slot was read";
    if (splits == 1) {
      EXPECT_TRUE(torch::equal(with, without)) << where << ": max difference "
                                               << (with - without).abs().max().item<double>();
    } else {
      // Other key ranges, so float32 sums in another order, then one bf16 rounding: a unit in
      // the last place (2^-7 relative) at most, and an absolute slack for values near zero.
      const double size = without.abs().max().item<double>();
      auto excess = (with - without).abs() - (without.abs() * std::ldexp(1.0, -7) + 1e-3 * size);
      EXPECT_LE(excess.max().item<double>(), 0.0) << where;
    }
    for (int64_t b = 0; b < B; ++b) {
      if (first[b] > slot) {
        EXPECT_TRUE(torch::equal(with[b], torch::zeros_like(with[b]))) << where << " row " << b;
      }
    }
    // The control: the kernel without first slots reads those tiles, and the NaN shows.
    auto control = run(poisoned_keys, poisoned_values, cleared, {});
    EXPECT_TRUE(control.isnan().any().item<bool>()) << where;
  }
}

// The same through a whole decode step of a model with the decode kernels: the first slots reach
// the attention kernel (its whole tiles below them poisoned with NaN, the key mask set there) and
// SDPA (which masks them), and each step gives bit for bit what the cleared key mask gives.
// Spans below 128 slots keep the kernel at one key range.
TEST(RolloutCuda, DecodeStepWithFirstSlotsMatchesAClearedMask) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto config = aha::ModelConfig::from_json(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "hidden_size": 896, "intermediate_size": 384, "num_hidden_layers": 3, "num_attention_heads": 14,
    "num_key_value_heads": 2, "max_position_embeddings": 1024, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "torch_dtype": "bfloat16", "bos_token_id": 0, "eos_token_id": 2, "initializer_range": 0.1,
    "tie_word_embeddings": true, "vocab_size": 512})",
                                                  "first slot test config");
  auto model = aha::init_model(config, 5, torch::kBFloat16, torch::kCUDA);
  torch::NoGradGuard no_grad;
  auto fused = model->fuse_projections();
  const int64_t B = 6, P = 100, steps = 5, L = 120;
  const std::vector<int64_t> first = {0, 20, 32, 40, 64, 97};
  auto cuda = torch::TensorOptions().device(torch::kCUDA);
  torch::manual_seed(9);
  auto ids = torch::randint(3, 512, {B, P + steps}, cuda.dtype(torch::kInt64));
  auto positions = torch::arange(P + steps, cuda.dtype(torch::kInt64)).expand({B, P + steps}).contiguous();
  auto cache = aha::KVCache::allocate(model->config(), B, L, model->dtype(), torch::kCUDA);
  auto full = torch::ones({B, L}, cuda.dtype(torch::kBool));
  model->hidden_states_cached(ids.narrow(1, 0, P), positions.narrow(1, 0, P), torch::arange(P, cuda.dtype(torch::kInt64)),
                              full.narrow(1, 0, P), cache, &fused);
  auto rows = torch::arange(B, cuda.dtype(torch::kInt64));
  for (bool kernel : {true, false}) {
    model->set_decode_attention_kernel(kernel);
    auto cleared_cache = cache.select_rows(rows);  // copies
    auto first_cache = cache.select_rows(rows);
    first_cache.first_slots = torch::tensor(first, torch::kInt64).to(torch::kCUDA);
    auto cleared = torch::zeros({B, L}, cuda.dtype(torch::kBool));
    auto open = torch::zeros({B, L}, cuda.dtype(torch::kBool));
    open.narrow(1, 0, P).fill_(true);
    for (int64_t b = 0; b < B; ++b) {
      cleared[b].narrow(0, first[b], P - first[b]).fill_(true);
      const int64_t unread = first[b] / 32 * 32;
      if (kernel && unread > 0) {
        for (size_t l = 0; l < first_cache.keys.size(); ++l) {
          first_cache.keys[l][b].narrow(1, 0, unread).fill_(NAN);
          first_cache.values[l][b].narrow(1, 0, unread).fill_(NAN);
        }
      }
    }
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t slot = P + t;
      cleared.select(1, slot).fill_(true);
      open.select(1, slot).fill_(true);
      auto slot_t = torch::tensor({slot}, cuda.dtype(torch::kInt64));
      auto step_ids = ids.narrow(1, slot, 1), step_positions = positions.narrow(1, slot, 1);
      auto got = model->hidden_states_cached(step_ids, step_positions, slot_t, open, first_cache, &fused);
      auto want = model->hidden_states_cached(step_ids, step_positions, slot_t, cleared, cleared_cache, &fused);
      ASSERT_FALSE(got.isnan().any().item<bool>()) << (kernel ? "kernel" : "SDPA") << " step " << t;
      EXPECT_TRUE(torch::equal(got, want)) << (kernel ? "kernel" : "SDPA") << " step " << t << ": max difference "
                                           << (got - want).abs().max().item<double>();
    }
  }
}
#endif

}  // namespace
