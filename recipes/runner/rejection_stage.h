// The `rejection_sample` stage kind of a multi-stage recipe (recipes/runner/stage_graph.h):
// rejection sampling (recipes/runner/rejection_sampling.h) from the stage's model ("@reasoning")
// into run_dir/exports/<stage>.jsonl, an SFT data file a later stage names as "@<stage>".
//
// Keys of the stage (all optional; recipes/README.md):
//   data                a data set spec or a list of them (the prompts); default: the recipe's
//                       data.train
//   limit               at most this many prompts (0: all)
//   samples (4), keep (1), filters (["correct", "format", "exact_dup"], without "format" when
//   the template is not R1-Zero's), language_threshold (0.99), max_paragraph_chars (2000),
//   min_tokens (1), max_tokens (none), near_dup_threshold (0.9), format_reward ("format"),
//   language_reward ("language"), temperature (0.6), top_p (1), top_k (0), max_new_tokens
//   (1024), seed (0), prompts_per_batch (16), reasoning ("field", what aha's SFT stage
//   reads; "both" | "think": sft_record.h)
//   template, system_prompt, stop_strings, rewards, accuracy_reward: the stage's own, else the
//   recipe's; with no rewards anywhere, rejection_sampling.h's defaults.
// The model's device, dtype and threads come from the recipe's model section.
//
// run.db: the stage's record (kind rejection_sample) and, at step 0, rejection/prompts,
// rejection/sampled, rejection/kept, rejection/prompts_without_kept, rejection/kept_tokens_mean
// and rejection/dropped/<filter>. Resume: a stage that was interrupted continues its export
// (resumable_jsonl.h: no prompt lost or repeated).
#pragma once
#include "recipes/runner/stage_graph.h"

namespace aha::recipes {

// Reads every key (errors name the stage and key); touches no file.
void check_rejection_stage(const StageInput& input);
StageResult run_rejection_stage(const StageInput& input);

}  // namespace aha::recipes
