// Recipe parsing: defaults, overrides, and errors that name the key at fault.
#include "recipes/runner/recipe.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace aha::recipes {
namespace {

using test::error_of;

const char* kMinimal = R"({
  "name": "t",
  "model": {"path": "models/base"},
  "data": {"train": {"synthetic": "arithmetic", "n": 20, "seed": 1}},
  "rewards": [{"name": "accuracy", "kind": "math_accuracy"}, {"name": "format", "kind": "format", "weight": 0.5}]
})";

Recipe parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_recipe(text, "recipes/test.json", overrides);
}

TEST(Recipe, MinimalRecipeGetsDefaults) {
  auto r = parse(kMinimal);
  EXPECT_EQ(r.name, "t");
  EXPECT_EQ(r.model.path, "models/base");
  EXPECT_EQ(r.model.dtype, "float32");
  EXPECT_EQ(r.template_name, "r1_zero");
  ASSERT_EQ(r.train_data.size(), 1u);
  EXPECT_EQ(r.train_data[0].synthetic, "arithmetic");
  EXPECT_EQ(r.rewards.size(), 2u);
  EXPECT_EQ(r.accuracy_reward, "accuracy");  // the first reward
  EXPECT_EQ(r.rollout.group_size, 8);
  EXPECT_EQ(r.base_dir, std::filesystem::path("recipes"));
  // One train_step is one optimizer step (no mini-batches): total steps = schedule steps.
  EXPECT_EQ(r.trainer.optimizer.schedule.total_steps, 100);
  EXPECT_DOUBLE_EQ(r.trainer.temperature, 1.0);
}

TEST(Recipe, OverridesReachNestedKeysAndListElements) {
  auto r = parse(kMinimal, {"rollout.group_size=16", "algorithm.lr=3e-6", "model.path=/models/Qwen2.5-1.5B",
                            "data.train.n=50", "rewards.1.weight=0.25", "algorithm.dual_clip_c=3",
                            "template=chatml", "schedule.steps=7", "algorithm.mini_batch_size=32",
                            "algorithm.router_aux_loss_coef=0.001"});
  EXPECT_EQ(r.rollout.group_size, 16);
  EXPECT_DOUBLE_EQ(r.trainer.optimizer.lr, 3e-6);
  EXPECT_EQ(r.model.path, "/models/Qwen2.5-1.5B");  // not JSON: taken as a string
  EXPECT_EQ(r.train_data[0].n, 50u);
  EXPECT_DOUBLE_EQ(r.rewards[1].weight, 0.25);
  ASSERT_TRUE(r.trainer.loss.dual_clip_c.has_value());
  EXPECT_DOUBLE_EQ(*r.trainer.loss.dual_clip_c, 3.0);
  EXPECT_EQ(r.template_name, "chatml");
  EXPECT_DOUBLE_EQ(r.trainer.router_aux_loss_coef, 0.001);
  EXPECT_DOUBLE_EQ(parse(kMinimal).trainer.router_aux_loss_coef, 0.0);  // off unless asked
  // 16 prompts x 16 samples = 256 rows in mini-batches of 32: 8 optimizer steps per step.
  EXPECT_EQ(r.trainer.optimizer.schedule.total_steps, 7 * 8);
  // The stored recipe carries the overrides.
  EXPECT_NE(r.canonical_json.find("\"group_size\":16"), std::string::npos);
}

TEST(Recipe, RoutingBiasUpdateRateIsReadAndChecked) {
  EXPECT_DOUBLE_EQ(parse(kMinimal).trainer.routing_bias_update_rate, 0.0);  // frozen unless asked
  EXPECT_DOUBLE_EQ(parse(kMinimal, {"algorithm.routing_bias_update_rate=0.001"}).trainer.routing_bias_update_rate, 0.001);
  auto e = error_of([] { parse(kMinimal, {"algorithm.routing_bias_update_rate=-1"}); });
  EXPECT_NE(e.find("routing_bias_update_rate"), std::string::npos) << e;
  EXPECT_TRUE(parse(kMinimal, {"algorithm.routing_bias_update_rate=0.001", "algorithm.activation_checkpointing=true"})
                  .trainer.activation_checkpointing);
}

TEST(Recipe, MicroBatchTokensIsReadAndChecked) {
  EXPECT_EQ(parse(kMinimal).trainer.micro_batch_tokens, 0);  // padded rows unless asked
  EXPECT_EQ(parse(kMinimal, {"algorithm.micro_batch_tokens=16384"}).trainer.micro_batch_tokens, 16384);
  auto e = error_of([] { parse(kMinimal, {"algorithm.micro_batch_tokens=4096", "algorithm.micro_batch_size=8"}); });
  EXPECT_NE(e.find("not both"), std::string::npos) << e;
  e = error_of([] { parse(kMinimal, {"algorithm.micro_batch_tokens=1"}); });
  EXPECT_NE(e.find("micro_batch_tokens"), std::string::npos) << e;
  e = error_of([] { parse(kMinimal, {"algorithm.micro_batch_tokens=-5"}); });
  EXPECT_NE(e.find("micro_batch_tokens"), std::string::npos) << e;
}

TEST(Recipe, UnknownKeysAreNamedWithTheValidOnes) {
  auto e = error_of([] { parse(kMinimal, {"rollout.group_sise=4"}); });
  EXPECT_NE(e.find("group_sise"), std::string::npos) << e;
  EXPECT_NE(e.find("group_size"), std::string::npos) << e;  // listed as valid
  e = error_of([] { parse(kMinimal, {"modle.path=x"}); });
  EXPECT_NE(e.find("modle"), std::string::npos) << e;
  e = error_of([] { parse(kMinimal, {"algorithm.learning_rate=1"}); });
  EXPECT_NE(e.find("learning_rate"), std::string::npos) << e;
  EXPECT_NE(e.find("lr"), std::string::npos) << e;
}

TEST(Recipe, IllTypedAndOutOfRangeValuesAreErrors) {
  EXPECT_NE(error_of([] { parse(kMinimal, {"rollout.group_size=\"eight\""}); }).find("group_size"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rollout.group_size=1"}); }).find("group_size"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rollout.temperature=0"}); }).find("temperature"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"eval.samples=4"}); }).find("temperature"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"model.dtype=int8"}); }).find("dtype"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"algorithm.kl_estimator=k9"}); }).find("kl_estimator"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"algorithm.aggregation=mean"}); }).find("aggregation"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"accuracy_reward=acc"}); }).find("accuracy_reward"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"template=nonsense"}); }).find("template"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"name=a b"}); }).find("name"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rewards.0.kind=telepathy"}); }).find("telepathy"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"data.train.synthetic=sudoku"}); }).find("synthetic"), std::string::npos);
  EXPECT_NE(error_of([] { parse("{\"name\": \"t\"}"); }).find("model"), std::string::npos);
}

// parallel.sharding: the four modes, an unknown one named with the choices, zero3's unsupported
// combination (bf16 weights) and its reference model (beta > 0); the key is left out of the recipe a resume
// compares (a run may resume under another sharding).
TEST(Recipe, ParallelShardingIsReadCheckedAndNotPartOfTheComparedRecipe) {
  EXPECT_EQ(parse(kMinimal).trainer.sharding, policy::Sharding::none);
  EXPECT_EQ(parse(kMinimal, {"parallel.sharding=zero1"}).trainer.sharding, policy::Sharding::zero1);
  auto zero2 = parse(kMinimal, {"parallel.sharding=zero2"});
  EXPECT_EQ(zero2.trainer.sharding, policy::Sharding::zero2);
  EXPECT_EQ(zero2.canonical_json, parse(kMinimal).canonical_json);
  auto e = error_of([] { parse(kMinimal, {"parallel.sharding=zero9"}); });
  EXPECT_NE(e.find("parallel.sharding"), std::string::npos) << e;
  EXPECT_NE(e.find("zero9"), std::string::npos) << e;
  EXPECT_NE(e.find("none, zero1, zero2, zero3"), std::string::npos) << e;
  auto zero3 = parse(kMinimal, {"parallel.sharding=zero3", "algorithm.beta=0"});
  EXPECT_EQ(zero3.trainer.sharding, policy::Sharding::zero3);
  EXPECT_EQ(zero3.canonical_json, parse(kMinimal, {"algorithm.beta=0"}).canonical_json);
  // A reference model (beta > 0) is sharded like the policy.
  auto zero3_ref = parse(kMinimal, {"parallel.sharding=zero3", "algorithm.beta=0.04"});
  EXPECT_EQ(zero3_ref.trainer.sharding, policy::Sharding::zero3);
  EXPECT_GT(zero3_ref.trainer.loss.beta, 0);
  e = error_of([] { parse(kMinimal, {"parallel.sharding=zero3", "algorithm.beta=0", "model.dtype=bfloat16"}); });
  EXPECT_NE(e.find("float32"), std::string::npos) << e;
  e = error_of([] { parse(kMinimal, {"parallel.shards=2"}); });
  EXPECT_NE(e.find("shards"), std::string::npos) << e;
  EXPECT_NE(e.find("sharding"), std::string::npos) << e;
}

// algorithm.fp32_master_weights: read into the optimizer's options for a bf16 model, with
// sharding zero1/zero2 and expert parallelism too; refused beside autocast_bf16, for a float32
// model and with zero3 (whose float32 master ranges are that layout), each error naming what to
// change.
TEST(Recipe, Fp32MasterWeightsNeedABf16ModelAndNotZero3) {
  EXPECT_FALSE(parse(kMinimal).trainer.optimizer.fp32_master);
  EXPECT_TRUE(parse(kMinimal, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true"}).trainer.optimizer.fp32_master);
  for (const char* sharded : {"parallel.sharding=zero1", "parallel.sharding=zero2", "parallel.expert_parallel=true"}) {
    const auto r = parse(kMinimal, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true", sharded});
    EXPECT_TRUE(r.trainer.optimizer.fp32_master) << sharded;
  }
  const auto both = parse(kMinimal, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true",
                                     "parallel.sharding=zero2", "parallel.expert_parallel=true"});
  EXPECT_EQ(both.trainer.sharding, policy::Sharding::zero2);
  EXPECT_TRUE(both.trainer.expert_parallel);
  auto e = error_of([] { parse(kMinimal, {"algorithm.fp32_master_weights=true"}); });  // float32 model
  EXPECT_NE(e.find("model.dtype"), std::string::npos) << e;
  EXPECT_NE(e.find("bfloat16"), std::string::npos) << e;
  e = error_of([] {
    parse(kMinimal, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true", "algorithm.autocast_bf16=true"});
  });
  EXPECT_NE(e.find("autocast_bf16"), std::string::npos) << e;
  e = error_of([] {
    parse(kMinimal, {"model.dtype=bfloat16", "algorithm.fp32_master_weights=true", "parallel.sharding=zero3"});
  });
  EXPECT_NE(e.find("fp32_master_weights is not available with parallel.sharding zero3"), std::string::npos) << e;
  EXPECT_NE(e.find("autocast_bf16"), std::string::npos) << e;
}

// parallel.prefetch: true by default, false read, anything but a boolean an error that names
// the key, the value and the choices; not part of the compared recipe either.
TEST(Recipe, ParallelPrefetchIsABooleanAndNotPartOfTheComparedRecipe) {
  EXPECT_TRUE(parse(kMinimal).trainer.prefetch);
  auto off = parse(kMinimal, {"parallel.sharding=zero3", "parallel.prefetch=false"});
  EXPECT_FALSE(off.trainer.prefetch);
  EXPECT_EQ(off.canonical_json, parse(kMinimal).canonical_json);
  EXPECT_TRUE(parse(kMinimal, {"parallel.prefetch=true"}).trainer.prefetch);
  for (const char* bad : {"parallel.prefetch=yes", "parallel.prefetch=1", "parallel.prefetch=\"true\""}) {
    auto e = error_of([&] { parse(kMinimal, {bad}); });
    EXPECT_NE(e.find("parallel.prefetch"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("true or false"), std::string::npos) << bad << ": " << e;
  }
}

// parallel.expert_parallel: off by default, read as a boolean, with every sharding (zero1/zero2:
// the replicated parameters' state sharded; zero3: the replicated parameters themselves, with
// zero3's own conditions: a float32 model, no fp32_master_weights); packed micro-batches and
// activation checkpointing go with it; left out of the recipe a resume compares (a run may
// resume with or without it).
TEST(Recipe, ParallelExpertParallelIsReadCheckedAndNotPartOfTheComparedRecipe) {
  EXPECT_FALSE(parse(kMinimal).trainer.expert_parallel);
  auto on = parse(kMinimal, {"parallel.expert_parallel=true"});
  EXPECT_TRUE(on.trainer.expert_parallel);
  EXPECT_EQ(on.canonical_json, parse(kMinimal).canonical_json);
  for (const char* mode : {"zero1", "zero2", "zero3"}) {
    const auto sharded = parse(kMinimal, {"parallel.expert_parallel=true", std::string("parallel.sharding=") + mode});
    EXPECT_TRUE(sharded.trainer.expert_parallel) << mode;
    EXPECT_EQ(policy::sharding_name(sharded.trainer.sharding), mode);
  }
  // zero3's own conditions still hold with expert parallelism.
  auto bf16 = error_of([&] {
    parse(kMinimal, {"parallel.expert_parallel=true", "parallel.sharding=zero3", "model.dtype=bfloat16"});
  });
  EXPECT_NE(bf16.find("parallel.sharding zero3 keeps float32 master weights"), std::string::npos) << bf16;
  auto masters = error_of([&] {
    parse(kMinimal, {"parallel.expert_parallel=true", "parallel.sharding=zero3", "model.dtype=bfloat16",
                     "algorithm.fp32_master_weights=true"});
  });
  EXPECT_NE(masters.find("fp32_master_weights is not available with parallel.sharding zero3"), std::string::npos)
      << masters;
  // Packed micro-batches: the ranks agree on their number (grpo_trainer.h).
  EXPECT_EQ(parse(kMinimal, {"parallel.expert_parallel=true", "algorithm.micro_batch_size=0",
                             "algorithm.micro_batch_tokens=64"})
                .trainer.micro_batch_tokens,
            64);
  // Recomputed layers return their router logits, so checkpointing goes with expert parallelism.
  EXPECT_TRUE(parse(kMinimal, {"parallel.expert_parallel=true", "algorithm.activation_checkpointing=true"})
                  .trainer.activation_checkpointing);
  auto e = error_of([] { parse(kMinimal, {"parallel.expert_parallel=yes"}); });
  EXPECT_NE(e.find("expert_parallel"), std::string::npos) << e;
}

TEST(Recipe, MalformedOverridesAreErrors) {
  EXPECT_NE(error_of([] { parse(kMinimal, {"rollout.group_size"}); }).find("key.path=value"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rewards.5.weight=1"}); }).find("no index 5"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rewards.x=1"}); }).find("index"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"name.x=1"}); }).find("not an object"), std::string::npos);
  EXPECT_NE(error_of([] { parse(kMinimal, {"rollout..x=1"}); }).find("empty key"), std::string::npos);
}

TEST(Recipe, MissingFileIsNamed) {
  auto e = error_of([] { load_recipe("no/such/recipe.json"); });
  EXPECT_NE(e.find("no/such/recipe.json"), std::string::npos) << e;
}

// "template": "model" is the model's chat template, read when the run starts (model.path may
// not exist yet); system_prompt and rollout.use_model_generation_config are read and checked.
TEST(Recipe, ModelTemplateSystemPromptAndGenerationConfigKeys) {
  auto r = parse(kMinimal, {"template=model", "system_prompt=Be brief.", "rollout.use_model_generation_config=true"});
  EXPECT_EQ(r.template_name, "model");
  EXPECT_EQ(r.system_prompt, "Be brief.");
  EXPECT_TRUE(r.rollout.use_model_generation_config);
  EXPECT_FALSE(parse(kMinimal).rollout.use_model_generation_config);
  EXPECT_EQ(parse(kMinimal).system_prompt, "");
  auto e = error_of([] { parse(kMinimal, {"system_prompt=x"}); });  // r1_zero has no system message
  EXPECT_NE(e.find("'template': prompt template 'r1_zero': a system prompt needs chatml, deepseek_r1 or model"),
            std::string::npos) << e;
  EXPECT_EQ(parse(kMinimal, {"template=chatml", "system_prompt=S"}).system_prompt, "S");
  e = error_of([] { parse(kMinimal, {"rollout.use_model_generation_config=3"}); });
  EXPECT_NE(e.find("use_model_generation_config"), std::string::npos) << e;
}

}  // namespace
}  // namespace aha::recipes
