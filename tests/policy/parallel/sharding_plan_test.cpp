// The sharding plan of `aha plan` (policy/parallel/sharding_plan.h): every figure of a tiny
// config worked out by hand, the layer sizes it reads from model_sizes.h against the parameter
// counts of `aha model info`, and the real shapes' totals against their publishers' figures.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "policy/model/model_config.h"
#include "policy/model/model_sizes.h"
#include "policy/parallel/sharding_plan.h"

namespace aha::parallel {
namespace {

const std::filesystem::path kModels = std::filesystem::path(AHA_SOURCE_DIR) / "recipes/models";

// vocab 16, hidden 8, intermediate 16, 2 layers, 2 heads of 4, 1 kv head, untied.
// Parameters: embedding 16 x 8 = 128, LM head 128, final norm 8; per layer q 8 x 8 = 64, k and v
// 8 x 4 = 32 each, o 8 x 8 = 64 (192), two norms 16, MLP 3 x 8 x 16 = 384: 592.
// Total 128 + 128 + 8 + 2 x 592 = 1448.
ModelConfig tiny() {
  return ModelConfig::from_json(
      R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 16, "hidden_size": 8,
          "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
          "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "tie_word_embeddings": false})",
      "tiny");
}

PlanInputs tiny_inputs() {
  PlanInputs in;
  in.gpus = 4;
  in.precision = Precision::bf16_master;
  in.micro_batch_tokens = 5;
  in.activation_checkpointing = false;
  in.rollout_rows = 3;
  in.rollout_tokens = 10;
  return in;
}

TEST(ShardingPlan, TinyModelByHand) {
  const auto c = tiny();
  ASSERT_EQ(c.parameter_count(), 1448);
  EXPECT_EQ(decoder_layer_parameter_count(c, 0), 592);
  EXPECT_EQ(decoder_layer_parameter_count(c, 1), 592);
  // KV: 2 (K, V) x 1 kv head x 4 dims x 2 layers x 2 bytes = 32 bytes per token.
  EXPECT_EQ(kv_cache_bytes_per_token(c, 2), 32);
  // Activation width per token and layer: 6 x 8 + 2 x 8 (q size) + 3 x 16 = 112 elements.
  EXPECT_EQ(decoder_layer_activation_width(c, 0), 112.0);

  const auto in = tiny_inputs();
  // bf16-master: 2 B weights, 2 B gradients, 12 B optimizer state per parameter.
  const auto none = plan_sharding(c, in, Sharding::none);
  EXPECT_EQ(none.weights, 2896.0);
  EXPECT_EQ(none.gradients, 2896.0);
  EXPECT_EQ(none.optimizer, 17376.0);
  EXPECT_EQ(none.gathered, 0.0);
  // Checkpointing off: 5 tokens x 2 B x (112 + 112) = 2240; KV 3 rows x 10 tokens x 32 = 960.
  EXPECT_EQ(none.activations, 2240.0);
  EXPECT_EQ(none.kv_cache, 960.0);
  EXPECT_EQ(none.total(), 2896.0 + 2896.0 + 17376.0 + 2240.0);

  const auto zero1 = plan_sharding(c, in, Sharding::zero1);  // optimizer / 4
  EXPECT_EQ(zero1.weights, 2896.0);
  EXPECT_EQ(zero1.gradients, 2896.0);
  EXPECT_EQ(zero1.optimizer, 4344.0);
  const auto zero2 = plan_sharding(c, in, Sharding::zero2);  // and gradients / 4
  EXPECT_EQ(zero2.weights, 2896.0);
  EXPECT_EQ(zero2.gradients, 724.0);
  EXPECT_EQ(zero2.optimizer, 4344.0);
  const auto zero3 = plan_sharding(c, in, Sharding::zero3);  // and weights / 4, + one layer gathered
  EXPECT_EQ(zero3.weights, 724.0);
  EXPECT_EQ(zero3.gradients, 724.0);
  EXPECT_EQ(zero3.optimizer, 4344.0);
  EXPECT_EQ(zero3.gathered, 592.0 * 2);  // the largest block: a layer (592) > the embedding (128)
  EXPECT_EQ(zero3.total(), 724.0 + 724.0 + 4344.0 + 1184.0 + 2240.0);

  // Checkpointing on: 5 x 2 x (2 layers x 8 hidden + 112) = 1280.
  auto on = in;
  on.activation_checkpointing = true;
  EXPECT_EQ(plan_sharding(c, on, Sharding::none).activations, 1280.0);
  // The larger phase counts: a KV cache of 100 rows (32000 B) replaces the activations.
  on.rollout_rows = 100;
  const auto kv_bound = plan_sharding(c, on, Sharding::zero1);
  EXPECT_EQ(kv_bound.kv_cache, 32000.0);
  EXPECT_EQ(kv_bound.total(), 2896.0 + 2896.0 + 4344.0 + 32000.0);

  // fp32: 4 + 4 + 8 bytes, activations and KV in 4 bytes; one GPU gathers nothing.
  auto fp32 = in;
  fp32.precision = Precision::fp32;
  fp32.gpus = 1;
  const auto single = plan_sharding(c, fp32, Sharding::zero3);
  EXPECT_EQ(single.weights, 5792.0);
  EXPECT_EQ(single.optimizer, 11584.0);
  EXPECT_EQ(single.gathered, 0.0);
  EXPECT_EQ(single.activations, 4480.0);
  EXPECT_EQ(single.kv_cache, 1920.0);
}

// tiny-deepseek-v3 (its total 231088 and active 157360 are worked out in
// tests/tools/model_families_cli_test.cpp): layer 0 is dense, 18640 attention and norms +
// 30720 MLP = 49360; layers 1-2 add to the attention a gate 8 x 64 = 512, 8 experts of 6144 and
// one shared expert of 6144: 74448. MLA caches (32 + 8) x 3 layers per token.
// What the learner holds as aha trains (aha train --check), on the tiny config (1448 parameters,
// the largest block a decoder layer of 592), float32 on 4 ranks, worked by hand.
TEST(TrainingMemory, TinyModelByHandUnderEachSharding) {
  const auto c = tiny();
  const auto none = training_memory(c, 4, false, /*reference=*/true, Sharding::none, 4);
  EXPECT_EQ(none.weights, 5792.0);
  EXPECT_EQ(none.gradients, 5792.0);
  EXPECT_EQ(none.optimizer, 11584.0);
  EXPECT_EQ(none.reference, 5792.0);
  EXPECT_EQ(none.total(), 28960.0);  // weights, gradients, two moments, the reference
  const auto zero1 = training_memory(c, 4, false, false, Sharding::zero1, 4);
  EXPECT_EQ(zero1.gradients, 5792.0);
  EXPECT_EQ(zero1.optimizer, 2896.0);
  const auto zero2 = training_memory(c, 4, false, false, Sharding::zero2, 4);
  EXPECT_EQ(zero2.gradients, 1448.0);
  EXPECT_EQ(zero2.optimizer, 2896.0);
  EXPECT_EQ(zero2.weights, 5792.0);
  // zero3 with bf16 autocast: master ranges 1448, gradient ranges 1448, moments 2896, a layer
  // and its gradient in float32 2 x 4 x 592 = 4736, the rollout's bf16 copy 2 x 1448 = 2896.
  const auto zero3 = training_memory(c, 4, true, false, Sharding::zero3, 4);
  EXPECT_EQ(zero3.weights, 1448.0);
  EXPECT_EQ(zero3.gradients, 1448.0);
  EXPECT_EQ(zero3.optimizer, 2896.0);
  EXPECT_EQ(zero3.gathered, 4736.0);
  EXPECT_EQ(zero3.rollout_weights, 2896.0);
  EXPECT_EQ(zero3.total(), 13424.0);
  EXPECT_EQ(training_memory(c, 4, false, false, Sharding::zero3, 4).rollout_weights, 5792.0);  // fp32 rollout copy
  // The reference (beta > 0) under zero3: its float32 master range, 5792 / 4; with prefetch one
  // more layer in flight, 3 x 4 x 592 = 7104.
  const auto zero3_ref = training_memory(c, 4, true, /*reference=*/true, Sharding::zero3, 4, /*prefetch=*/true);
  EXPECT_EQ(zero3_ref.reference, 1448.0);
  EXPECT_EQ(zero3_ref.gathered, 7104.0);
  EXPECT_EQ(zero3_ref.total(), 13424.0 + 1448.0 + 2368.0);
  // Start-up, loaded sharded: the master range 1448 + the rollout's bf16 copy 2896 + a read
  // buffer of 64 (and the reference's range 1448), not the whole float32 model's 5792 first.
  EXPECT_EQ(zero3.zero3_startup(64), 4408.0);
  EXPECT_EQ(zero3_ref.zero3_startup(64), 5856.0);
  // A checkpoint, streamed block by block: master 1448 + rollout 2896 + gradients 1448 + moments
  // 2896 (8688 resident) + one layer in float32 4 x 592 = 2368 + a write buffer of 64: 11120, not
  // the whole float32 model's 5792 on top of the 8688 (14480); with the reference's range 12568.
  EXPECT_EQ(zero3.checkpoint_block, 2368.0);
  EXPECT_EQ(zero3.zero3_checkpoint(64), 11120.0);
  EXPECT_EQ(zero3_ref.zero3_checkpoint(64), 12568.0);
  // One rank shards nothing.
  EXPECT_EQ(training_memory(c, 4, true, false, Sharding::zero3, 1).total(), 23168.0);  // 4 x 5792
  EXPECT_THROW(training_memory(c, 2, true, false, Sharding::zero3, 4), Error);
  EXPECT_THROW(training_memory(c, 4, true, false, Sharding::zero3, 0), Error);
}

// bf16 weights with float32 masters (algorithm.fp32_master_weights), one rank, by hand: weights
// and gradients 2 x 1448 = 2896 each; two float32 moments and the float32 master 3 x 4 x 1448.
TEST(TrainingMemory, Fp32MastersOfBf16WeightsByHand) {
  const auto c = tiny();
  const auto m = training_memory(c, 2, false, false, Sharding::none, 1, false, false, /*fp32_master=*/true);
  EXPECT_EQ(m.weights, 2896.0);
  EXPECT_EQ(m.gradients, 2896.0);
  EXPECT_EQ(m.optimizer, 17376.0);
  EXPECT_EQ(m.total(), 23168.0);
  EXPECT_EQ(training_memory(c, 2, false, false, Sharding::none, 1).optimizer, 5792.0);  // bf16 moments
  EXPECT_THROW(training_memory(c, 4, false, false, Sharding::none, 1, false, false, true), Error);  // float32
  EXPECT_THROW(training_memory(c, 2, false, false, Sharding::zero3, 4, false, false, true), Error);
}

// Sharded float32 masters (zero1/zero2 over 4 ranks), by hand: the bf16 weights whole (2896),
// zero1's bf16 gradients whole (2896) and zero2's a quarter (724), and per rank the float32
// master and two moments of a quarter of the 1448 parameters, 12 x 362 = 4344 (what the
// ZeroMasters tests count from the optimizer's tensors).
TEST(TrainingMemory, ShardedFp32MastersHoldTheirRangeByHand) {
  const auto c = tiny();
  const auto zero1 = training_memory(c, 2, false, false, Sharding::zero1, 4, false, false, /*fp32_master=*/true);
  EXPECT_EQ(zero1.weights, 2896.0);
  EXPECT_EQ(zero1.gradients, 2896.0);
  EXPECT_EQ(zero1.optimizer, 4344.0);
  const auto zero2 = training_memory(c, 2, false, false, Sharding::zero2, 4, false, false, /*fp32_master=*/true);
  EXPECT_EQ(zero2.weights, 2896.0);
  EXPECT_EQ(zero2.gradients, 724.0);
  EXPECT_EQ(zero2.optimizer, 4344.0);
  EXPECT_EQ(zero2.total(), 2896.0 + 724.0 + 4344.0);
  // With expert parallelism over 2 ranks (tiny-deepseek-v3: 231088 parameters, 98304 of them
  // routed experts): 12 bytes for each of the rank's 49152 experts' elements and of its half of
  // the 132784 replicated ones, 12 x (49152 + 66392).
  const auto ds = ModelConfig::from_file(kModels / "tiny-deepseek-v3.json");
  const auto ep = training_memory(ds, 2, false, false, Sharding::zero2, 2, false, /*expert_parallel=*/true,
                                  /*fp32_master=*/true);
  EXPECT_EQ(ep.optimizer, 12.0 * (49152 + 66392));
}

TEST(ShardingPlan, DeepseekV3TinyCountsEveryExpertAndTheLatentCache) {
  const auto c = ModelConfig::from_file(kModels / "tiny-deepseek-v3.json");
  ASSERT_EQ(c.parameter_count(), 231088);
  EXPECT_EQ(decoder_layer_parameter_count(c, 0), 49360);
  EXPECT_EQ(decoder_layer_parameter_count(c, 1), 74448);
  EXPECT_EQ(decoder_layer_parameter_count(c, 2), 74448);
  EXPECT_EQ(kv_cache_bytes_per_token(c, 2), 240);
  // Widths: 6 x 64 + 4 heads x (24 + 16) = 544, + dense 3 x 160 = 480 or MoE 8 + 2 x (128 + 96) + 96 = 552.
  EXPECT_EQ(decoder_layer_activation_width(c, 0), 1024.0);
  EXPECT_EQ(decoder_layer_activation_width(c, 1), 1096.0);
  auto in = tiny_inputs();
  in.gpus = 2;
  const auto f = model_footprint(c, in);
  EXPECT_EQ(f.parameters, 231088);
  EXPECT_EQ(f.active_parameters, 157360);
  EXPECT_EQ(f.largest_block, 74448);
  const auto zero3 = plan_sharding(c, in, Sharding::zero3);
  EXPECT_EQ(zero3.weights, 231088.0);  // 2 B x 231088 / 2 GPUs
  EXPECT_EQ(zero3.optimizer, 12.0 * 231088 / 2);
  EXPECT_EQ(zero3.kv_cache, 3.0 * 10 * 240);
  EXPECT_EQ(zero3.activations, 5.0 * 2 * (1024 + 1096 + 1096));
}

// The real shapes: the totals `aha model info` prints, against their publishers' figures.
TEST(ShardingPlan, RealShapesMatchPublishedParameterCounts) {
  const auto qwen = ModelConfig::from_file(kModels / "qwen2.5-0.5b.json");
  EXPECT_EQ(qwen.parameter_count(), 494032768);  // Qwen2.5-0.5B: 0.49B
  const auto ds = ModelConfig::from_file(kModels / "deepseek-v3.json");
  // DeepSeek-V3: 671B total, 37B activated per token (the report; the 14B MTP module aside).
  EXPECT_NEAR(double(ds.parameter_count()), 671e9, 1e9);
  EXPECT_NEAR(double(ds.active_parameter_count()), 37e9, 1e9);
  // 61 layers of (512 + 64) latent values in bf16: 70,272 bytes per token.
  EXPECT_EQ(kv_cache_bytes_per_token(ds, 2), 70272);
  // The layers add up to the model: every layer plus embedding, head and final norm.
  int64_t layers = 0;
  for (int64_t l = 0; l < ds.num_hidden_layers; ++l) layers += decoder_layer_parameter_count(ds, l);
  EXPECT_EQ(layers + 2 * ds.vocab_size * ds.hidden_size + ds.hidden_size, ds.parameter_count());
  // 671B with bf16 weights and fp32 masters and moments is ~10 TiB: no sharding fits 8 GPUs,
  // ZeRO-3 over 256 puts under 40 GiB of state on each.
  PlanInputs in;
  in.gpus = 256;
  const auto zero3 = plan_sharding(ds, in, Sharding::zero3);
  EXPECT_LT(zero3.weights + zero3.gradients + zero3.optimizer, 40.0 * (1 << 30));
  in.gpus = 8;
  EXPECT_GT(plan_sharding(ds, in, Sharding::zero3).total(), 1000.0 * (1 << 30));
}

TEST(ShardingPlan, BadInputsAreErrorsThatNameThem) {
  auto in = tiny_inputs();
  in.gpus = 0;
  try {
    plan_sharding(tiny(), in, Sharding::none);
    FAIL() << "gpus 0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("GPUs"), std::string::npos) << e.what();
  }
  in = tiny_inputs();
  in.micro_batch_tokens = 0;
  EXPECT_THROW(plan_sharding(tiny(), in, Sharding::none), Error);
  try {
    parse_sharding("zero4");
    FAIL() << "zero4 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("zero4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("zero3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_precision("fp8"), Error);
  EXPECT_EQ(parse_sharding("zero2"), Sharding::zero2);
  EXPECT_EQ(precision_name(parse_precision("bf16-master")), "bf16-master");
  EXPECT_THROW(decoder_layer_parameter_count(tiny(), 2), Error);
}

// Expert parallelism: tiny-deepseek-v3's routed experts (2 MoE layers x 8 experts x 3 x 32 x 64 =
// 98304 of 231088 parameters) are halved on 2 GPUs in weights, gradients and optimizer state,
// and gathered whole for the rollout; aha's learner keeps the rollout's whole copy.
TEST(ShardingPlan, ExpertParallelDividesTheRoutedExpertsByTheGpus) {
  const auto c = ModelConfig::from_file(kModels / "tiny-deepseek-v3.json");
  ASSERT_EQ(c.parameter_count(), 231088);
  EXPECT_EQ(routed_expert_parameters(c), 2 * 8 * 3 * 32 * 64);
  EXPECT_EQ(routed_expert_parameters(ModelConfig::from_file(kModels / "tiny-qwen2.json")), 0);
  PlanInputs in;
  in.gpus = 2;
  in.precision = Precision::fp32;
  in.expert_parallel = true;
  const auto p = plan_sharding(c, in, Sharding::none);
  const double local = 231088 - 98304 + 98304 / 2;
  EXPECT_DOUBLE_EQ(p.weights, local * 4);
  EXPECT_DOUBLE_EQ(p.gradients, local * 4);
  EXPECT_DOUBLE_EQ(p.optimizer, local * 8);
  EXPECT_DOUBLE_EQ(p.gathered, 98304.0 * 4);
  in.gpus = 1;  // one GPU: nothing to split
  EXPECT_DOUBLE_EQ(plan_sharding(c, in, Sharding::none).weights, 231088.0 * 4);

  const auto m = training_memory(c, 4, /*autocast_bf16=*/false, /*reference=*/false, Sharding::none, 2, /*prefetch=*/false, /*expert_parallel=*/true);
  EXPECT_DOUBLE_EQ(m.weights, local * 4);
  EXPECT_DOUBLE_EQ(m.gradients, local * 4);
  EXPECT_DOUBLE_EQ(m.optimizer, local * 8);
  EXPECT_DOUBLE_EQ(m.rollout_weights, 231088.0 * 4);
  EXPECT_DOUBLE_EQ(training_memory(c, 4, false, false, Sharding::none, 1, /*prefetch=*/false, /*expert_parallel=*/true).weights, 231088.0 * 4);
}

// With zero1/zero2 the replicated rest is sharded as without expert parallelism (optimizer state,
// and with zero2 gradients, / N), while the rank's experts keep their whole state.
TEST(ShardingPlan, ExpertParallelWithZeroShardsTheReplicatedRest) {
  const auto c = ModelConfig::from_file(kModels / "tiny-deepseek-v3.json");
  const double experts = 98304, replicated = 231088 - experts, local = experts / 2;
  PlanInputs in;
  in.gpus = 2;
  in.precision = Precision::fp32;
  in.expert_parallel = true;
  for (const auto sharding : {Sharding::zero1, Sharding::zero2}) {
    const double gradients = (sharding == Sharding::zero2 ? replicated / 2 : replicated) + local;
    const auto p = plan_sharding(c, in, sharding);
    EXPECT_DOUBLE_EQ(p.weights, (replicated + local) * 4);
    EXPECT_DOUBLE_EQ(p.gradients, gradients * 4);
    EXPECT_DOUBLE_EQ(p.optimizer, (replicated / 2 + local) * 8);
    const auto m = training_memory(c, 4, false, false, sharding, 2, /*prefetch=*/false, /*expert_parallel=*/true);
    EXPECT_DOUBLE_EQ(m.weights, (replicated + local) * 4);
    EXPECT_DOUBLE_EQ(m.gradients, gradients * 4);
    EXPECT_DOUBLE_EQ(m.optimizer, (replicated / 2 + local) * 8);
  }
}

// ZeRO-3 with expert parallelism: the replicated parameters are fully sharded (/ N in weights,
// gradients and optimizer state), the rank's routed experts are whole, and a block's experts are
// never gathered. tiny-deepseek-v3 by hand (hidden 64, vocab 256, untied): embedding and LM head
// 256 x 64 = 16384 each, final norm 64; MLA attention per layer q_a 64 x 48 = 3072, its norm 48,
// q_b 48 x 4 x (16 + 8) = 4608, kv_a 64 x (32 + 8) = 2560, its norm 32, kv_b 32 x 4 x (16 + 16) =
// 4096, o 64 x 64 = 4096: 18512, plus two norms 128; layer 0 dense, MLP 3 x 64 x 160 = 30720:
// 49360; layers 1-2 MoE, router 8 x 64 = 512, one shared expert 3 x 64 x 32 = 6144, routed
// experts 8 x 3 x 32 x 64 = 49152: 74448. The largest block is a MoE layer (74448); less its
// routed experts (25296) the largest gathered block is the dense layer, 49360.
TEST(ShardingPlan, ExpertParallelWithZero3ShardsTheReplicatedParametersOnly) {
  const auto c = ModelConfig::from_file(kModels / "tiny-deepseek-v3.json");
  EXPECT_EQ(decoder_layer_parameter_count(c, 0), 49360);
  EXPECT_EQ(decoder_layer_parameter_count(c, 1), 74448);
  EXPECT_EQ(largest_replicated_block(c), 49360);
  const double experts = 98304, replicated = 231088 - experts, local = experts / 2;
  const double held = replicated / 2 + local;  // 66392 + 49152 = 115544 elements
  ASSERT_DOUBLE_EQ(held, 115544);
  PlanInputs in;
  in.gpus = 2;
  in.precision = Precision::fp32;
  in.expert_parallel = true;
  const auto p = plan_sharding(c, in, Sharding::zero3);
  EXPECT_DOUBLE_EQ(p.weights, held * 4);
  EXPECT_DOUBLE_EQ(p.gradients, held * 4);
  EXPECT_DOUBLE_EQ(p.optimizer, held * 8);
  EXPECT_DOUBLE_EQ(p.gathered, 49360.0 * 4 + experts * 4);  // one replicated block, every expert for the rollout
  in.expert_parallel = false;
  EXPECT_DOUBLE_EQ(plan_sharding(c, in, Sharding::zero3).gathered, 74448.0 * 4);  // the whole MoE layer

  // aha's learner (float32 masters, bf16 autocast, a reference, prefetch): masters and the
  // reference's of the replicated range plus the rank's experts, three blocks of the replicated
  // kind in flight, the rollout's whole bf16 copy.
  const auto m = training_memory(c, 4, /*autocast_bf16=*/true, /*reference=*/true, Sharding::zero3, 2,
                                 /*prefetch=*/true, /*expert_parallel=*/true);
  EXPECT_DOUBLE_EQ(m.weights, held * 4);
  EXPECT_DOUBLE_EQ(m.gradients, held * 4);
  EXPECT_DOUBLE_EQ(m.optimizer, held * 8);
  EXPECT_DOUBLE_EQ(m.reference, held * 4);
  EXPECT_DOUBLE_EQ(m.gathered, 3.0 * 4 * 49360);
  EXPECT_DOUBLE_EQ(m.rollout_weights, 231088.0 * 2);
  EXPECT_DOUBLE_EQ(m.zero3_startup(1000), held * 4 * 2 + 231088.0 * 2 + 1000);
  // A checkpoint: the dense layer (the largest replicated block, 49360) and one expert's matrix
  // (32 x 64 = 2048) in float32, 4 x 51408 = 205632, beside the resident state: masters, the
  // reference's, gradients and moments 20 x 115544 = 2310880, the rollout's copy 462176, and a
  // write buffer of 1000: 2979688.
  EXPECT_DOUBLE_EQ(m.checkpoint_block, 205632.0);
  EXPECT_DOUBLE_EQ(m.zero3_checkpoint(1000), 2979688.0);
  const auto no_prefetch = training_memory(c, 4, false, false, Sharding::zero3, 2, false, true);
  EXPECT_DOUBLE_EQ(no_prefetch.gathered, 2.0 * 4 * 49360);
  EXPECT_DOUBLE_EQ(no_prefetch.reference, 0);
  EXPECT_DOUBLE_EQ(no_prefetch.rollout_weights, 231088.0 * 4);
  // Without expert parallelism zero3 divides everything, experts included, and gathers whole layers.
  const auto plain = training_memory(c, 4, false, true, Sharding::zero3, 2, false, false);
  EXPECT_DOUBLE_EQ(plain.weights, 231088.0 / 2 * 4);
  EXPECT_DOUBLE_EQ(plain.reference, 231088.0 / 2 * 4);
  EXPECT_DOUBLE_EQ(plain.gathered, 2.0 * 4 * 74448);
}

}  // namespace
}  // namespace aha::parallel
