// `aha plan` as a user meets it: the table for a tiny DeepSeek-V3 config and the real 671B one,
// sizes taken from a recipe, and careless input (missing config, --gpus 0, unknown sharding)
// refused with a message that names it: exit 2 for usage mistakes, 1 for a file that is not there.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "core/files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

constexpr int kTimeout = 60;

std::string models(const std::string& name) { return (fs::path(AHA_SOURCE_DIR) / "recipes/models" / name).string(); }

TEST(PlanCli, TinyDeepseekV3TableByHand) {
  // tiny-deepseek-v3, 231088 parameters, bf16-master on 2 GPUs: optimizer state 12 B x 231088 =
  // 2773056 B, zero1 halves it to 1386528 B = 0.0013 GiB: the table prints GiB with 2 decimals,
  // so the rows are checked through the header lines, which carry exact figures.
  auto r = aha::test::run_aha("plan --model " + models("tiny-deepseek-v3.json") +
                                  " --gpus 2 --micro-batch-tokens 5 --rollout-rows 3 --rollout-tokens 10 "
                                  "--activation-checkpointing off",
                              true, kTimeout);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_NE(r.out.find("parameters   231088 (0.23 M), 157360 (0.16 M) active per token"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("per parameter weights 2 B, gradients 2 B, optimizer 12 B"), std::string::npos) << r.out;
  // 3 rows x 10 tokens x (32 + 8) x 3 layers x 2 B.
  EXPECT_NE(r.out.find("3 rows x 10 tokens x 240 B per token (MLA latent cache: (kv_lora_rank 32 + qk_rope_head_dim 8)"),
            std::string::npos)
      << r.out;
  for (const char* mode : {"\nnone ", "\nzero1 ", "\nzero2 ", "\nzero3 "}) EXPECT_NE(r.out.find(mode), std::string::npos) << mode;
  EXPECT_NE(r.out.find("fits: with none (the least sharding that fits)"), std::string::npos) << r.out;
}

TEST(PlanCli, DeepseekV3OnlyFitsWhenShardedOverManyGpus) {
  auto eight = aha::test::run_aha("plan --model " + models("deepseek-v3.json") + " --gpus 8", true, kTimeout);
  ASSERT_EQ(eight.exit_status, 0) << eight.out;
  EXPECT_NE(eight.out.find("DeepseekV3ForCausalLM"), std::string::npos) << eight.out;
  EXPECT_NE(eight.out.find("does not fit in 140.40 GiB per GPU under any sharding mode"), std::string::npos) << eight.out;
  auto many = aha::test::run_aha("plan --model " + models("deepseek-v3.json") + " --gpus 256 --sharding zero3", true,
                                 kTimeout);
  ASSERT_EQ(many.exit_status, 0) << many.out;
  EXPECT_NE(many.out.find("fits: with zero3\n"), std::string::npos) << many.out;
  EXPECT_EQ(many.out.find("\nzero1 "), std::string::npos) << "only the asked mode is printed";
}

TEST(PlanCli, RecipeSizes) {
  // r1-zero-gpu: 32 prompts x 16 samples, max_new_tokens 256, mini-batch 256 rows, micro-batch
  // 128 rows, float32 + autocast. On 4 GPUs each samples 8 prompts: 128 rows of 256 + 256
  // tokens; an optimizer step takes 256 / 4 = 64 rows from each GPU, fewer than the micro-batch's
  // 128, so a forward/backward is 64 rows x 512 = 32768 tokens.
  auto r = aha::test::run_aha("plan --recipe " + (fs::path(AHA_SOURCE_DIR) / "recipes/r1-zero-gpu.json").string() +
                                  " --model " + models("qwen2.5-0.5b.json") + " --gpus 4",
                              true, kTimeout);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_NE(r.out.find("precision    autocast"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("micro-batch of 32768 tokens, activation checkpointing off"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("128 rows x 512 tokens x 24576 B per token"), std::string::npos) << r.out;  // 2 x 2 x 64 x 24 x 4 B
  auto uneven = aha::test::run_aha("plan --recipe " + (fs::path(AHA_SOURCE_DIR) / "recipes/r1-zero-gpu.json").string() +
                                       " --model " + models("qwen2.5-0.5b.json") + " --gpus 3",
                                   true, kTimeout);
  EXPECT_EQ(uneven.exit_status, 1) << uneven.out;
  EXPECT_NE(uneven.out.find("prompts_per_step 32 does not divide by --gpus 3"), std::string::npos) << uneven.out;
}

// A recipe that asks for parallel.sharding zero3 is planned under zero3 alone (--sharding all
// still lists every mode), with the note on the rollout's whole bf16 copy: 494032768 x 2 B, and
// the start-up peak of the sharded load.
TEST(PlanCli, TheRecipesShardingIsPlanned) {
  const fs::path dir = fs::temp_directory_path() / ("aha-plan-zero3-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string text = aha::read_file(fs::path(AHA_SOURCE_DIR) / "recipes/r1-zero-gpu.json");
  const auto brace = text.rfind('}');
  ASSERT_NE(brace, std::string::npos);
  text = text.substr(0, brace) + R"(, "parallel": {"sharding": "zero3"}})";
  aha::write_file_atomic(dir / "recipe.json", text);
  const std::string base = "plan --recipe " + (dir / "recipe.json").string() + " --model " + models("qwen2.5-0.5b.json") + " --gpus 4";
  auto r = aha::test::run_aha(base, true, kTimeout);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_NE(r.out.find("\nzero3 "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\nnone "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rollout's whole copy of the weights in the compute dtype, 0.92 GiB"), std::string::npos) << r.out;
  // Loaded sharded: the master range 4 B x P / 4 GPUs = 0.46 GiB, the bf16 rollout copy 0.92 GiB
  // and one bf16 file staged (the model is smaller than a 5 GiB shard) 0.92 GiB: 2.30 GiB.
  EXPECT_NE(r.out.find("master range, 0.46 GiB, from the files, then the rollout's copy, staging one file of 0.92 GiB: "
                       "2.30 GiB at start; the whole float32 model, 1.84 GiB, is never loaded"),
            std::string::npos)
      << r.out;
  // A checkpoint, streamed block by block: the resident masters P, gradients P, moments 2P and the
  // bf16 rollout copy 2P (6 x 494032768 = 2964196608 B) plus the largest block, the tied
  // embedding 151936 x 896 in float32 (544538624 B; a decoder layer is 14912384 parameters), and
  // the 64 MiB write buffer: 3575844096 B = 3.33 GiB.
  EXPECT_NE(r.out.find("the model is written block by block, 0.51 GiB gathered at once in float32 and a write buffer "
                       "of 0.06 GiB beside the resident state and the rollout's copy: 3.33 GiB at a checkpoint"),
            std::string::npos)
      << r.out;
  auto all = aha::test::run_aha(base + " --sharding all", true, kTimeout);
  ASSERT_EQ(all.exit_status, 0) << all.out;
  EXPECT_NE(all.out.find("\nnone "), std::string::npos) << all.out;
  aha::remove_tree(dir);
}

// A bf16 recipe with algorithm.fp32_master_weights is planned as bf16-master (2 + 2 + 12 bytes
// per parameter), the same recipe without it as pure bf16.
TEST(PlanCli, Fp32MasterWeightsArePlannedAsBf16Master) {
  const fs::path dir = fs::temp_directory_path() / ("aha-plan-master-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string text = aha::read_file(fs::path(AHA_SOURCE_DIR) / "recipes/r1-zero-gpu.json");
  for (auto [from, to] : {std::pair<std::string, std::string>{R"("dtype": "float32")", R"("dtype": "bfloat16")"},
                          {R"("autocast_bf16": true)", R"("fp32_master_weights": true)"}}) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  }
  // The plan of the recipe `text` with its precision line.
  auto plan = [&](const std::string& name) {
    aha::write_file_atomic(dir / name, text);
    auto r = aha::test::run_aha("plan --recipe " + (dir / name).string() + " --model " + models("qwen2.5-0.5b.json") +
                                    " --gpus 1",
                                true, kTimeout);
    EXPECT_EQ(r.exit_status, 0) << r.out;
    return r.out;
  };
  auto master = plan("master.json");
  EXPECT_NE(master.find("precision    bf16-master"), std::string::npos) << master;
  const std::string flag = R"("fp32_master_weights": true)";
  text.replace(text.find(flag), flag.size(), R"("fp32_master_weights": false)");
  auto plain = plan("bf16.json");
  EXPECT_NE(plain.find("precision    bf16:"), std::string::npos) << plain;
  aha::remove_tree(dir);
}

TEST(PlanCli, ExpertParallelSplitsTheRoutedExpertsAndNeedsAnMoeModel) {
  auto r = aha::test::run_aha("plan --model " + models("tiny-deepseek-v3.json") + " --gpus 2 --expert-parallel on",
                              true, kTimeout);
  ASSERT_EQ(r.exit_status, 0) << r.out;
  EXPECT_NE(r.out.find("expert parallel: each GPU holds 4 of 8 routed experts per layer"), std::string::npos) << r.out;
  // With zero3 the start-up note counts the rank's experts beside its master range.
  auto zero3 = aha::test::run_aha(
      "plan --model " + models("tiny-deepseek-v3.json") + " --gpus 2 --expert-parallel on --sharding zero3", true, kTimeout);
  ASSERT_EQ(zero3.exit_status, 0) << zero3.out;
  EXPECT_NE(zero3.out.find("each GPU reads only its float32 master range and its routed experts"), std::string::npos)
      << zero3.out;
  auto dense = aha::test::run_aha("plan --model " + models("tiny-qwen2.json") + " --gpus 2 --expert-parallel on",
                                  true, kTimeout);
  EXPECT_EQ(dense.exit_status, 1) << dense.out;
  EXPECT_NE(dense.out.find("needs a mixture-of-experts model"), std::string::npos) << dense.out;
  auto odd = aha::test::run_aha("plan --model " + models("tiny-deepseek-v3.json") + " --gpus 3 --expert-parallel on",
                                true, kTimeout);
  EXPECT_EQ(odd.exit_status, 1) << odd.out;
  EXPECT_NE(odd.out.find("8 routed experts cannot be split evenly over 3 GPUs"), std::string::npos) << odd.out;
}

TEST(PlanCli, BadInputIsRefusedByName) {
  auto no_model = aha::test::run_aha("plan --gpus 8", true, kTimeout);
  EXPECT_EQ(no_model.exit_status, 2) << no_model.out;
  EXPECT_NE(no_model.out.find("--model"), std::string::npos) << no_model.out;

  auto missing = aha::test::run_aha("plan --model /nonexistent/config.json --gpus 8", true, kTimeout);
  EXPECT_EQ(missing.exit_status, 1) << missing.out;
  EXPECT_NE(missing.out.find("/nonexistent/config.json"), std::string::npos) << missing.out;

  auto zero_gpus = aha::test::run_aha("plan --model " + models("qwen3-0.6b.json") + " --gpus 0", true, kTimeout);
  EXPECT_EQ(zero_gpus.exit_status, 2) << zero_gpus.out;
  EXPECT_NE(zero_gpus.out.find("--gpus"), std::string::npos) << zero_gpus.out;

  auto no_gpus = aha::test::run_aha("plan --model " + models("qwen3-0.6b.json"), true, kTimeout);
  EXPECT_EQ(no_gpus.exit_status, 2) << no_gpus.out;

  auto sharding = aha::test::run_aha("plan --model " + models("qwen3-0.6b.json") + " --gpus 2 --sharding zero4", true,
                                     kTimeout);
  EXPECT_EQ(sharding.exit_status, 2) << sharding.out;
  EXPECT_NE(sharding.out.find("unknown sharding 'zero4'"), std::string::npos) << sharding.out;

  auto memory = aha::test::run_aha("plan --model " + models("qwen3-0.6b.json") + " --gpus 2 --gpu-memory -3", true,
                                   kTimeout);
  EXPECT_EQ(memory.exit_status, 2) << memory.out;
  EXPECT_NE(memory.out.find("--gpu-memory"), std::string::npos) << memory.out;
}

}  // namespace
