// `aha model init` and `aha model info` for the Qwen3 families, as a user meets them: a random
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

}  // namespace
