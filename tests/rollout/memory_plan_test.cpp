// Memory planning: the KV cache size worked out by hand, and the error when it does not fit.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/files.h"
#include "policy/model/model_config.h"
#include "rollout/memory_plan.h"

namespace {

aha::ModelConfig qwen05() {
  return aha::ModelConfig::from_file(std::string(AHA_SOURCE_DIR) + "/recipes/models/qwen2.5-0.5b.json");
}

aha::RolloutShape benchmark_shape() {
  aha::RolloutShape s;
  s.prompts = 64;
  s.group_size = 8;
  s.prompt_tokens = 128;
  s.max_new_tokens = 512;
  s.cache_capacity = 640;
  s.prefill_rows = 64;
  s.element_size = 2;
  return s;
}

TEST(MemoryPlan, KvCacheByHand) {
  // 512 rows x 640 slots x 24 layers x (K and V) x 2 kv heads x 64 dims x 2 bytes = 3.75 GiB.
  auto plan = aha::plan_rollout_memory(qwen05(), benchmark_shape());
  EXPECT_EQ(plan.kv_cache_bytes, 512LL * 640 * 24 * 2 * 2 * 64 * 2);
  EXPECT_EQ(plan.kv_cache_bytes, 4026531840LL);
  // Sampling: 512 rows x 151936 x (2 + 16) bytes.
  EXPECT_EQ(plan.sampling_bytes, 512LL * 151936 * 18);
  EXPECT_GT(plan.prefill_bytes, 0);
  EXPECT_EQ(plan.needed_bytes(), plan.kv_cache_bytes + plan.sampling_bytes + plan.prefill_bytes);
  EXPECT_EQ(plan.weight_bytes, qwen05().parameter_count() * 2);
}

// Qwen3-30B-A3B: every expert is resident (30.5B weights, not the 3.3B a token uses), the
// cache follows its 4 kv heads of 128 over 48 layers, and fused projections copy q/k/v only
// (its layers have no dense gate/up to fuse).
TEST(MemoryPlan, MixtureOfExpertsCountsAllExpertsAndNoFusedGateUp) {
  auto moe = aha::ModelConfig::from_file(std::string(AHA_SOURCE_DIR) + "/recipes/models/qwen3-30b-a3b.json");
  auto shape = benchmark_shape();
  shape.fused_projections = true;
  auto plan = aha::plan_rollout_memory(moe, shape);
  EXPECT_EQ(plan.weight_bytes, moe.parameter_count() * 2);
  EXPECT_GT(plan.weight_bytes, 60'000'000'000LL);
  EXPECT_EQ(plan.kv_cache_bytes, 512LL * 640 * 48 * 2 * 4 * 128 * 2);
  EXPECT_EQ(plan.fused_weight_bytes, 48LL * (4096 + 2 * 512) * 2048 * 2);
  // Prefill activations grow with the experts' width per routed copy (8 x 768), not with 128 experts' weights.
  auto wider = moe;
  wider.moe_intermediate_size *= 2;
  EXPECT_GT(aha::plan_rollout_memory(wider, shape).prefill_bytes, plan.prefill_bytes);
}

TEST(MemoryPlan, ScalesWithGroupSizeAndLength) {
  auto shape = benchmark_shape();
  auto base = aha::plan_rollout_memory(qwen05(), shape);
  shape.group_size = 16;
  EXPECT_EQ(aha::plan_rollout_memory(qwen05(), shape).kv_cache_bytes, 2 * base.kv_cache_bytes);
  shape = benchmark_shape();
  shape.cache_capacity = 1280;
  EXPECT_EQ(aha::plan_rollout_memory(qwen05(), shape).kv_cache_bytes, 2 * base.kv_cache_bytes);
  shape = benchmark_shape();
  shape.top_p = true;
  EXPECT_GT(aha::plan_rollout_memory(qwen05(), shape).sampling_bytes, base.sampling_bytes);
}

TEST(MemoryPlan, SaysWhatToLowerWhenItDoesNotFit) {
  auto shape = benchmark_shape();
  auto plan = aha::plan_rollout_memory(qwen05(), shape);
  EXPECT_NO_THROW(aha::require_fits(plan, shape, plan.needed_bytes(), "cuda:0"));
  try {
    aha::require_fits(plan, shape, 2LL << 30, "cuda:0");
    FAIL() << "expected an error";
  } catch (const aha::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("64 prompts x group size 8"), std::string::npos) << message;
    EXPECT_NE(message.find("2.00 GiB is free on cuda:0"), std::string::npos) << message;
    EXPECT_NE(message.find("KV cache 3.75 GiB"), std::string::npos) << message;
    EXPECT_NE(message.find("group size"), std::string::npos) << message;
    EXPECT_NE(message.find("max_new_tokens"), std::string::npos) << message;
  }
}

// A continuous batch plans its live rows, not the whole request.
TEST(MemoryPlan, DecodeRowsOfAContinuousBatch) {
  auto shape = benchmark_shape();
  shape.prompts = 1024;
  shape.rows = 512;
  // 128 + 512 + 511 slots when rows are refilled, rounded up to 128; 640 without.
  EXPECT_EQ(aha::rollout_cache_capacity(128, 512, false, 128), 640);
  EXPECT_EQ(aha::rollout_cache_capacity(128, 512, true, 128), 1152);
  EXPECT_EQ(aha::rollout_cache_capacity(19, 20, true, 4), 60);
  shape.cache_capacity = 1152;
  auto plan = aha::plan_rollout_memory(qwen05(), shape);
  EXPECT_EQ(plan.kv_cache_bytes, 512LL * 1152 * 24 * 2 * 2 * 64 * 2);
  EXPECT_EQ(plan.sampling_bytes, 512LL * 151936 * 18);
  EXPECT_EQ(shape.decode_rows(), 512);
  shape.rows = 0;
  EXPECT_EQ(shape.decode_rows(), 1024 * 8);
  EXPECT_EQ(aha::plan_rollout_memory(qwen05(), shape).kv_cache_bytes, 8192LL * 1152 * 24 * 2 * 2 * 64 * 2);
}

}  // namespace
