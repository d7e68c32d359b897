// The SFT stage of a multi-stage recipe (stage_graph.h): next-token training of the stage's
// model on chat data with the loss on assistant tokens only (sft_data.h), examples packed
// into rows (policy/learner/sft_packing.h), for a number of epochs under a warm-up + decay LR
// schedule, with held-out loss and, when the recipe has eval data sets and rewards, the same
// generation evaluation as GRPO (accuracy, format rate, mean length).
//
//   {"name": "cold_start", "kind": "sft", "model": "@base", "data": ["cot.jsonl", "@rejection"],
//    "epochs": 2, "lr": 1e-5, "batch_tokens": 4096, "max_length": 512, "packing": true}
//
// Keys (recipes/README.md lists them with defaults): data, heldout_data, heldout_fraction,
// template, system_prompt, on_bad_example, max_length, packing, row_tokens, batch_tokens,
// micro_batch_rows, epochs, lr, warmup_steps, lr_decay, min_lr_ratio, weight_decay,
// max_grad_norm, seed, eval_every, checkpoint_every, keep_last.
//
// Writes under the run directory: checkpoints/<stage>/step-<n>/ (model in HF format with the
// tokenizer, optimizer, RNG); its output is the last step's model/. run.db: the stage record,
// per step sft/loss, sft/lr, sft/tokens, sft/grad_norm, sft/epoch; at step 0 data/examples,
// data/heldout_examples, data/records, data/dropped and data/dropped/<reason>; at each
// evaluation eval/heldout_loss and eval/* (evaluation.h). Resume continues from the newest
// checkpoint: the epoch order is a function of (seed, epoch), so the same rows follow.
#pragma once
#include "recipes/runner/stage_graph.h"

namespace aha::recipes {

// Reads the stage's keys; throws aha::Error naming the stage and key. No file is read.
void check_sft_stage(const StageInput& input);
StageResult run_sft_stage(const StageInput& input);

}  // namespace aha::recipes
