// `aha model init` and `aha model info` for the Qwen3 families and DeepSeek-V3, as a user meets them: a random
// model of each tiny shape in recipes/models/ is written and read back, and info prints the
// total and active parameter counts worked out by hand.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/files.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace {

constexpr int kTimeout = 120;

std::string init_and_info(const std::string& config, const fs::path& out) {
  auto init = aha::test::run_aha("model init --config " + (fs::path(AHA_SOURCE_DIR) / config).string() + " --out " +
                                     out.string() + " --seed 3",
                                 true, kTimeout);
  EXPECT_EQ(init.exit_status, 0) << init.out;
  auto info = aha::test::run_aha("model info " + out.string(), true, kTimeout);
  EXPECT_EQ(info.exit_status, 0) << info.out;
  return info.out;
}

TEST(ModelFamiliesCli, Qwen3MoeInitAndInfoCountTotalAndActiveParameters) {
  const fs::path out = fs::temp_directory_path() / ("aha_tiny_qwen3_moe_" + std::to_string(::getpid()));
  const std::string info = init_and_info("recipes/models/tiny-qwen3-moe.json", out);
  // tiny-qwen3-moe: vocab 256 x hidden 64 tied (16384) + final norm 64; per layer attention
  // q 64x64, k and v 64x32, o 64x64 (12288) + q/k norms 32 + two norms 128 = 12448, x 3 layers;
  // layer 0 dense (mlp_only_layers) 3 x 64 x 160 = 30720; layers 1-2 router 8 x 64 = 512 and
  // 8 experts of 3 x 64 x 32 = 6144 each. Total 16448 + 37344 + 30720 + 2 x (512 + 8 x 6144) =
  // 183840; active with 2 experts: 16448 + 37344 + 30720 + 2 x (512 + 2 x 6144) = 110112.
  EXPECT_NE(info.find("Qwen3MoeForCausalLM"), std::string::npos) << info;
  EXPECT_NE(info.find("parameters        183840 (0.18 M)"), std::string::npos) << info;
  EXPECT_NE(info.find("active parameters 110112 (0.11 M) per token"), std::string::npos) << info;
  EXPECT_NE(info.find("experts           8 routed, top 2"), std::string::npos) << info;
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  aha::remove_tree(out);
}

TEST(ModelFamiliesCli, Qwen3DenseActiveEqualsTotal) {
  const fs::path out = fs::temp_directory_path() / ("aha_tiny_qwen3_" + std::to_string(::getpid()));
  const std::string info = init_and_info("recipes/models/tiny-qwen3.json", out);
  // tiny-qwen3: 16384 + 64 embeddings and final norm; per layer q 64x128, k and v 64x64, o 128x64
  // (24576) + q/k norms 64 + norms 128 + MLP 30720 = 55488, x 2 = 110976. Total 127424.
  EXPECT_NE(info.find("parameters        127424 (0.13 M)"), std::string::npos) << info;
  EXPECT_NE(info.find("active parameters 127424 (0.13 M) per token"), std::string::npos) << info;
  EXPECT_EQ(info.find("experts "), std::string::npos) << info;
  aha::remove_tree(out);
}

TEST(ModelFamiliesCli, DeepseekV3InitAndInfoCountTotalAndActiveParameters) {
  const fs::path out = fs::temp_directory_path() / ("aha_tiny_dsv3_" + std::to_string(::getpid()));
  const std::string info = init_and_info("recipes/models/tiny-deepseek-v3.json", out);
  // tiny-deepseek-v3: untied vocab 256 x hidden 64 twice (32768) + final norm 64; per layer MLA
  // q_a 48x64 (3072) + its norm 48 + q_b (4 heads x 24) x 48 (4608) + kv_a (32 + 8) x 64 (2560)
  // + its norm 32 + kv_b (4 x 32) x 32 (4096) + o 64 x 64 (4096) = 18512, + two norms 128, x 3
  // layers = 55920; layer 0 dense 3 x 64 x 160 = 30720; layers 1-2 gate 8 x 64 = 512, 8 routed
  // experts of 3 x 64 x 32 = 6144 and 1 shared of 6144. Total 32832 + 55920 + 30720 +
  // 2 x (512 + 9 x 6144) = 231088; active with 2 routed: 32832 + 55920 + 30720 + 2 x (512 +
  // 3 x 6144) = 157360.
  EXPECT_NE(info.find("DeepseekV3ForCausalLM"), std::string::npos) << info;
  EXPECT_NE(info.find("parameters        231088 (0.23 M)"), std::string::npos) << info;
  EXPECT_NE(info.find("active parameters 157360 (0.16 M) per token"), std::string::npos) << info;
  EXPECT_NE(info.find("8 routed, top 2 of them per token (sigmoid, grouped weights)"), std::string::npos) << info;
  EXPECT_NE(info.find("in 2 of 3 layers, plus 1 shared"), std::string::npos) << info;
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  aha::remove_tree(out);
}

}  // namespace
