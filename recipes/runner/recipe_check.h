// `aha train RECIPE --check`: everything a run reads and decides before its first step,
// checked without training and without writing anything, and the plan of what it would run.
//
// Contract: check_recipe() never throws for a problem of the recipe or its inputs; each
// problem is a failed CheckItem whose detail is the error the run would have stopped with
// (data files missing or unparsable, unknown rewards or options, a model that is neither
// present nor buildable, a run directory the run may not use, a memory plan that does not fit
// the device). Every check runs even after an earlier one failed, so one --check lists all of
// them. The model's config.json and tokenizer are read; its weights are not loaded.
#pragma once
#include <string>
#include <vector>

#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/recipe.h"
#include "recipes/runner/stage_graph.h"

namespace aha::recipes {

struct CheckItem {
  std::string what;    // "data.train.0", "rewards", "model", "memory", ...
  bool ok = true;
  std::string detail;  // what was found, or the problem
};

struct RecipeCheck {
  std::vector<CheckItem> items;
  std::vector<std::string> plan;  // what the run would do, one line each
  bool ok() const;
};

RecipeCheck check_recipe(const Recipe& recipe, const RunOptions& options);
// The same for a multi-stage recipe (staged_recipe_check.cpp): the run directory, each stage's
// keys, each GRPO stage's checks above (an earlier stage's model stands in as the base model)
// and each SFT stage's data files.
RecipeCheck check_staged_recipe(const StagedRecipe& recipe, const RunOptions& options);

}  // namespace aha::recipes
