// A multi-stage recipe: `"stages": [...]` run in order in one run directory, each stage a
// kind (sft, grpo, rejection_sample, distill) whose model or data may be an earlier stage's
// output ("@cold_start"), as in the DeepSeek-R1 flow (cold start, reasoning RL, rejection
// sampling, SFT, RL). `aha train RECIPE` runs a recipe with "stages" here and one without it
// as the single GRPO stage (grpo_stage.h), unchanged.
//
//   {"name": "r1-tiny", "model": {...}, "template": "r1_zero", "data": {"eval": {...}},
//    "rewards": [...], "eval": {...},                      <- shared: what stages inherit
//    "stages": [
//      {"name": "cold_start", "kind": "sft", "model": "@base", "data": "cot.jsonl", ...},
//      {"name": "reasoning", "kind": "grpo", "model": "@cold_start", "schedule": {...}, ...},
//      {"name": "rejection", "kind": "rejection_sample", "model": "@reasoning", ...},
//      {"name": "sft2", "kind": "sft", "model": "@base", "data": "@rejection"}]}
//
// Plugging in a stage kind: add one entry to stage_kinds() in stage_graph.cpp with the kind's
// output (a model directory or a data file), a check (reads the stage's keys, throws
// aha::Error naming the stage; runs for every stage before any work) and a run function
// (StageInput -> StageResult). The runner owns its stage record in run.db
// (RunStore::begin_stage(input.stage.name, kind, ...) and finish_stage), writes its output
// under input.run_dir (checkpoint_dir() or export_path()), resumes from its own checkpoints
// when input.resume is true, and returns the output's path with finished = true only when the
// stage is complete. The graph records that path (run.db config "stage_output.<name>") and
// never runs a finished stage again.
//
// Contract:
// - References: a stage's "model" is "@base" (default: the recipe's model section), "@<stage>"
//   (an earlier stage whose output is a model) or a model directory; its "data" (a string or
//   a list) may hold "@<stage>" entries naming earlier stages whose output is a data file.
//   Unknown stages, references to the stage itself or later ones, and references to the wrong
//   output kind are errors naming the stage and the key.
// - A stage whose "model" is a directory may say "build": a pretraining spec that makes that
//   directory when it is missing and reuses it when it made it from the same spec, before the
//   stage starts (recipes/runner/base_model.h); the kind's own check never sees the key.
// - Stage names are unique, non-empty, of letters, digits, '_' and '-', and not "base".
// - Resume: with --resume the recipe must be the one the run started with; stages whose
//   output is recorded are skipped (their outputs never touched), and the first unfinished
//   one continues from its own checkpoints.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/recipe.h"

namespace aha::recipes {

enum class StageOutput { kModel, kData };

struct StageSpec {
  std::string name, kind;
  int64_t index = 0;
  std::string model = "@base";      // "@base", "@<stage>" or a directory
  // "build": a pretraining spec (relative to the recipe's folder) that makes the directory
  // `model` when it is missing, as the recipe's model.build does for "@base" (a student base
  // model of its own for a distill stage). Empty: none.
  std::filesystem::path model_build;
  std::string config_json;          // the stage's own object, as written (canonical JSON)
};

struct StagedRecipe {
  std::string name;
  std::filesystem::path file, base_dir;
  ModelSection model;                // the base model ("@base")
  std::string shared_json;           // the top-level object without "stages": what stages inherit
  std::vector<StageSpec> stages;
  std::string canonical_json;        // the whole recipe after overrides, as stored in the run
};

// What a stage runner is given.
struct StageInput {
  const StagedRecipe* recipe = nullptr;
  const StageSpec* stage = nullptr;
  std::filesystem::path run_dir;
  std::filesystem::path model_dir;  // the resolved "model": base, an earlier stage's output, a path
  std::map<std::string, std::filesystem::path> outputs;  // earlier stages' outputs by name
  bool resume = false;  // the stage has a record in run.db: continue from its checkpoints
  RunOptions options;   // progress, stop_after_steps (run_dir and resume as above)

  std::filesystem::path checkpoint_dir() const;  // run_dir/checkpoints/<stage>
  std::filesystem::path export_path() const;     // run_dir/exports/<stage>.jsonl
  // "@name" -> that stage's output; anything else is a path relative to the recipe's folder.
  std::filesystem::path resolve_data(const std::string& ref) const;
  // The stage's keys deep-merged over the recipe's shared keys (objects merged member by
  // member, the stage's values win), without name, kind and model: for kinds whose keys are a
  // single-stage recipe's (grpo).
  std::string merged_json() const;
};

struct StageResult {
  std::filesystem::path output;  // model directory or data file
  bool finished = false;         // false: stopped early (stop_after_steps); resume continues
  int64_t steps = 0;
};

struct StageKind {
  std::string kind;
  StageOutput output;
  std::function<void(const StageInput&)> check;  // throws aha::Error naming the stage
  std::function<StageResult(const StageInput&)> run;
};
const std::vector<StageKind>& stage_kinds();
const StageKind& stage_kind(const std::string& kind);  // throws listing the kinds

// Whether a recipe file's JSON has "stages" (a multi-stage recipe), after overrides.
bool is_staged_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
StagedRecipe parse_staged_recipe(const std::string& json_text, const std::filesystem::path& file,
                                 const std::vector<std::string>& overrides = {});
StagedRecipe load_staged_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// Every stage's check with placeholder references (no file of an earlier stage exists yet).
void check_stages(const StagedRecipe& recipe);

// The "model" section of a stage whose model is a directory: its path and build (for
// check_model_source, grpo_stage.h).
Recipe stage_model_recipe(const StagedRecipe& recipe, const StageSpec& stage);

struct StageSummary {
  std::string name, kind, status;
  std::filesystem::path output;
  // The stage's last eval/* values in run.db (held-out evaluation: grpo, sft, distill), and
  // for rejection_sample its rejection/* counts (prompts, sampled, kept, kept_tokens_mean, ...).
  std::map<std::string, double> eval;
};
struct StagedRunSummary {
  std::filesystem::path run_dir;
  std::vector<StageSummary> stages;
  bool finished = false;
  double seconds = 0;
};

StagedRunSummary run_staged(const StagedRecipe& recipe, const RunOptions& options);

}  // namespace aha::recipes
