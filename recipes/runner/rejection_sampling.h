// Rejection sampling (DeepSeek-R1's stage 3, and `aha distill`): N responses per prompt from a
// model through the rollout engine (recipes/runner/sampling.h), scored by the rewards, filtered
// (recipes/runner/rejection_filters.h), up to K kept per prompt and written as SFT-ready
// `messages` JSON Lines (recipes/runner/sft_record.h) with provenance:
//   prompt_id, prompt_index, source, model, stage, step, sample_index, template, gold,
//   reward (the weighted total), rewards (every component, floats), tokens, finish_reason.
//
// Durability (recipes/runner/resumable_jsonl.h): prompts are done in order and each prompt's
// kept records are appended and fsynced before the progress record counts it, so after a
// kill -9 a resume truncates a torn last line, skips the prompts done and redoes the rest: the
// output has every prompt's records once. prompts_per_batch prompts decode at once, and prompts
// go to the engine in windows of kRequestBatches x prompts_per_batch aligned to multiples of
// it (continuous batching within a window, recipes/runner/sampling.h); prompt i's samples
// draw from streams keyed by (seed, i), so an uninterrupted run is a function of its settings
// and a resume, wherever it starts, samples what the uninterrupted run would have.
//
// Statistics (RejectionStats, written as JSON to stats_path(out) when the run completes):
// prompts, responses sampled, kept, dropped per filter (the first filter that failed,
// rejection_filters.h), prompts with nothing kept, kept response lengths in tokens (mean,
// p10/p50/p90, max; read back from the output, so a resumed run's figures cover all of it), and
// the dominant language (CLD2, reward/language_identifier.h) of each kept response's reasoning
// ("none" when nothing was identified).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "datasets/example.h"
#include "datasets/prompt_template.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/rejection_filters.h"
#include "recipes/runner/resumable_jsonl.h"
#include "recipes/runner/sft_record.h"
#include "reward/reward_registry.h"
#include "rollout/rollout_engine.h"

namespace aha::recipes {

struct RejectionSamplingOptions {
  int64_t samples = 4;  // N responses per prompt
  int64_t keep = 1;     // K kept at most
  RejectionFilters filters;
  PromptTemplate prompt_template = PromptTemplate::r1_zero();
  double temperature = 0.6, top_p = 1.0;
  int64_t top_k = 0, max_new_tokens = 1024;
  uint64_t seed = 0;
  int64_t prompts_per_batch = 16;  // prompts decoding at once
  std::vector<int64_t> eos_token_ids;
  std::vector<reward::RewardSpec> rewards;  // default_rejection_rewards(...) when empty
  size_t reward_threads = 0;
  ReasoningLayout layout = ReasoningLayout::both;
  // Provenance.
  std::string model, stage, data;
  int64_t step = -1;
};

// The rewards used when none are given: "accuracy" (math_accuracy; only an <answer> tag counts
// with an R1-Zero template), "format" (format, with think_in_prompt when the template opens
// <think>) with an R1-Zero template, and "language" (language_consistency, en) when the
// language filter is on.
std::vector<reward::RewardSpec> default_rejection_rewards(const PromptTemplate& prompt_template,
                                                          const RejectionFilters& filters);

// Throws aha::Error naming the option: samples < 1, keep < 1, a temperature of 0 with
// samples > 1, top_p outside (0, 1], max_new_tokens < 1, prompts_per_batch < 1, bad filter
// settings, a filter whose reward component no reward gives.
void validate(const RejectionSamplingOptions& options);

struct RejectionStats {
  int64_t prompts = 0, prompts_done = 0, sampled = 0, kept = 0, prompts_without_kept = 0;
  std::map<std::string, int64_t> dropped;  // by filter name (and "over_keep")
  std::map<std::string, int64_t> languages;
  double mean_tokens = 0;
  int64_t p10_tokens = 0, p50_tokens = 0, p90_tokens = 0, max_tokens = 0;
  std::vector<std::string> filters;  // the filters switched on
};

std::string stats_json(const RejectionStats& stats);
// <out without .jsonl>.stats.json ("data.jsonl" -> "data.stats.json").
std::filesystem::path stats_path(const std::filesystem::path& out);

// Runs (or, with mode resume, continues) rejection sampling into `out`; see the top of the file.
// The stats file is checked before any work (absent, or with overwrite/resume one aha wrote).
RejectionStats run_rejection_sampling(RolloutEngine& engine, const Tokenizer& tokenizer,
                                      const std::vector<Example>& examples, const RejectionSamplingOptions& options,
                                      const std::filesystem::path& out, ResumableJsonl::Mode mode,
                                      const ProgressFn& progress = {});

}  // namespace aha::recipes
