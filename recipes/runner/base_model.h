// ensure_base_model: makes (or reuses) the base model a PretrainSpec describes, without a model
// hub: generate the corpus, train the BPE tokenizer, pretrain a Qwen2 model from scratch by
// next-token prediction on packed documents, check it on held-out arithmetic, and write a
// Hugging Face directory: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, generation_config.json, pretrain_spec.json, pretrain_report.json.
//
// Contract:
//   * Reuse: when DIR already holds a complete base model whose pretrain_report.json names the
//     same spec hash, nothing is done and the result says reused (the stage runner calls this
//     at the start of every run).
//   * Atomic: everything is written into a temporary sibling of DIR that replaces DIR only once
//     complete (the held-out check included); a failure or interruption leaves DIR as it was
//     (absent, or the previous model) and removes the temporary.
//   * Deterministic on the CPU: the same spec gives the same corpus, tokenizer, data order and
//     initial weights (and, with the same thread count, the same trained weights).
//   * Progress goes to stderr when options.progress: one line per update with the step, loss,
//     tokens/s and ETA; options.on_stage (tests, callers) hears each stage as it starts.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "recipes/runner/pretrain_spec.h"

namespace aha {

struct PretrainRunOptions {
  torch::Device device = torch::kCPU;
  bool progress = true;
  // A directory at `dir` that does not hold a base model of this spec is never replaced, with
  // one exception: an earlier `aha pretrain` output when `overwrite` (core/output_dir.h).
  bool overwrite = false;
  std::string target_name = "--out";  // how errors name `dir` (e.g. "model.path")
  // Called with "corpus", "tokenizer", "train", "save", "eval", "commit" as each begins; an
  // exception thrown from it aborts the run like any failure.
  std::function<void(const std::string& stage)> on_stage;
};

struct BaseModelResult {
  std::filesystem::path dir;
  bool reused = false;
  int64_t steps = 0, tokens = 0, skipped_steps = 0;
  double wall_seconds = 0, train_seconds = 0, final_loss = 0;
  std::optional<double> heldout_accuracy;  // when the spec asks for the check
};

BaseModelResult ensure_base_model(const PretrainSpec& spec, const std::filesystem::path& dir,
                                  const PretrainRunOptions& options = {});

// Whether dir holds a complete base model built from a spec with this hash.
bool holds_base_model(const std::filesystem::path& dir, uint64_t spec_hash);

}  // namespace aha
