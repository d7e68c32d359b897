// The model directories zero3_load_test.cpp and zero3_test.cpp load sharded: one safetensors
// file (the tiny tied Qwen2), ten files with an index (an untied Qwen2), a Qwen3-MoE with its
// experts per expert as on the hub and the same stacked as transformers 5 names them, and the
// tiny Qwen2 in bf16 files. The last two are written once per test process into a temporary
// directory that is removed when the process exits.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/files.h"
#include "policy/model/model_io.h"
#include "policy/model/safetensors.h"

namespace aha::parallel::testing {

inline const std::string kTied = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/qwen2_gqa_tied";
inline const std::string kSplit = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/qwen2_mha_untied_sharded";
inline const std::string kMoe = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/qwen3_moe_top2_norm";
inline const std::string kDeepSeek = std::string(AHA_SOURCE_DIR) + "/tests/fixtures/models/deepseek_v3_qlora_groups";

struct ScratchModels {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("aha-zero3-load-models-" + std::to_string(::getpid()));
  ScratchModels() {
    remove_tree(root);
    // The MoE fixture's experts stacked under transformers 5's names, with its config.
    auto moe = load_model(kMoe);
    std::filesystem::create_directories(root / "stacked");
    save_checkpoint_tensors(root / "stacked", moe->checkpoint_tensors(/*fused_experts=*/true));
    std::filesystem::copy_file(std::filesystem::path(kMoe) / "config.json", root / "stacked" / "config.json");
    // The tied model rounded to bf16 and saved so (config.json's torch_dtype bfloat16).
    save_model(*load_model(kTied, {torch::kCPU, torch::kBFloat16}), root / "bf16");
  }
  ~ScratchModels() { remove_tree(root); }
};

inline const ScratchModels& scratch_models() {
  static const ScratchModels models;
  return models;
}
inline std::string stacked_moe() { return (scratch_models().root / "stacked").string(); }
inline std::string bf16_tied() { return (scratch_models().root / "bf16").string(); }

}  // namespace aha::parallel::testing
