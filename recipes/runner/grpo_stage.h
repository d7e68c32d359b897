// The GRPO stage runner: executes a recipe (recipes/recipe.h) as one training run, step by
// step, with everything going to the run directory:
//
//   runs/<name>/run.db                          config, stage, metrics, samples, checkpoints, events
//   runs/<name>/checkpoints/grpo/step-<n>/     HF model + optimizer + RNG + data cursor
//
// One step (ARCHITECTURE.md, "One GRPO step, as data"): the next prompts_per_step examples of
// the shuffled training data -> the template and tokenizer -> G completions each from the
// rollout engine, which reads the learner's live weights -> rewards -> group advantages -> one
// GrpoTrainer::train_step -> metrics and samples written in one transaction. With
// dynamic_sampling, groups whose rewards are all equal are dropped and more prompts are
// sampled (up to max_sampling_rounds rollouts) to refill the batch, as DAPO does
// (step_sampling.h; under the split layout the refill rounds run on the rollout workers).
//
// Evaluation on the recipe's held-out data sets runs before the first step, every eval.every
// steps and after the last, with the recipe's accuracy reward as the verifier, and is recorded
// as recipes/evaluation.h's eval_metrics: eval/accuracy (pass@1 over all eval examples),
// eval/maj_accuracy, eval/format_rate, response lengths, and each per data set
// (eval/<data set>/accuracy, ...).
//
// Resume: with resume = true the run continues from the newest complete checkpoint (weights,
// optimizer, RNG, data cursor, step), and the recipe must be the one the run was started with;
// steps after the checkpoint are recomputed and their records replaced. Sampling seeds are a
// function of (seed, step), so a resumed run draws what the uninterrupted run would have.
// Without resume, a run directory that already holds a run is an error (nothing is touched).
//
// Data parallel (options.comm, policy/parallel/): every rank runs this with the same recipe;
// each samples, scores and trains on its share of every step's prompts (rollout.prompts_per_step
// must divide by the world size), step metrics are reduced over the ranks, and only rank 0
// writes the run directory (run.db, checkpoints, evaluations, progress) while the others wait
// for it. Samples in run.db are rank 0's share. --resume loads the last checkpoint on every rank.
//
// Failures: bad input throws aha::Error before any work where it can be checked up front
// (recipe, model, data, rewards); an error mid-run marks the stage "failed" in the run
// database, keeps every checkpoint written so far, and rethrows.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include <torch/types.h>

#include "policy/parallel/communicator.h"
#include "recipes/runner/recipe.h"

namespace aha::recipes {

struct RunOptions {
  std::filesystem::path run_dir;  // empty: runs/<recipe name>
  bool resume = false;
  bool progress = true;  // the progress bar on stderr
  // > 0: stop after this many steps of this invocation (with a checkpoint; the stage is left
  // "stopped"), to be continued with resume -- for time-boxed sessions and for tests.
  int64_t stop_after_steps = 0;
  // Set by the stage graph (stage_graph.h) when GRPO is one stage of a multi-stage recipe:
  // the stage's name (its run.db record and checkpoints/<name>/) and the model it trains,
  // which replaces model.path and model.build. The graph has checked run_dir and stored the
  // recipe. Empty: a single-stage recipe (stage "grpo").
  std::string stage_name;
  std::filesystem::path stage_model;
  // Data parallel: this rank's connection to the others; null for a single process.
  std::shared_ptr<parallel::Communicator> comm;
  // --check (recipe_check.h): how many ranks the run would have, for the memory plan of a
  // sharded learner (parallel.sharding).
  int64_t check_ranks = 1;
  // Split layout: the program whose "rollout-worker" command runs a rollout worker (the `aha`
  // executable); empty: this process's own (/proc/self/exe).
  std::filesystem::path rollout_worker_program;
};

struct RunSummary {
  std::filesystem::path run_dir;
  std::filesystem::path final_checkpoint;
  int64_t steps = 0;  // steps done in total (including before a resume)
  std::map<std::string, double> eval_first, eval_last;  // eval metrics, first and last evaluation
  std::map<std::string, double> last_step;              // the last step's metrics
  double seconds = 0;                                   // wall time of this invocation
};

RunSummary run_grpo(const Recipe& recipe, const RunOptions& options);

// The checks run_grpo makes before any work, for `aha train --check` (recipe_check.h) too.
// Each throws aha::Error naming the problem.
// The run directory the run would write (runs/<name> or options.run_dir): new or empty, or
// with resume one that holds this recipe's run.
std::filesystem::path checked_run_dir(const Recipe& recipe, const RunOptions& options);
// The same for any recipe by its name and canonical JSON (multi-stage recipes too).
std::filesystem::path checked_run_dir(const std::string& name, const std::string& canonical_json,
                                      const RunOptions& options);
// model.path holds a model, or model.build can make one there (never over a model it did not make).
void check_model_source(const Recipe& recipe);
// The verifier of evaluations: the recipe's accuracy reward as a one-reward spec (JSON).
std::string accuracy_spec_json(const Recipe& recipe);
// The recipe's first language_consistency reward as one spec (JSON object), for the
// evaluation's language-mix rate; "" when it has none.
std::string language_spec_json(const Recipe& recipe);
// model.device: "auto" is the first GPU when there is one, else the CPU.
torch::Device choose_device(const std::string& name);

}  // namespace aha::recipes
