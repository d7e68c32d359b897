// `aha train RECIPE --check` for a multi-stage recipe (stage_graph.h): the run directory once,
// each stage's keys and references, each GRPO stage's full single-stage check (recipe_check.h)
// and each SFT stage's chat data files, without training or writing.
#include <rapidjson/document.h>

#include "core/error.h"
#include "core/json.h"
#include "datasets/chat_data.h"
#include "recipes/runner/grpo_stage.h"
#include "recipes/runner/recipe_check.h"
#include "recipes/runner/stage_graph.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

void add(RecipeCheck& out, const std::string& what, bool ok, const std::string& detail) {
  out.items.push_back({what, ok, detail});
}

// An SFT stage's data files (not "@stage" ones, which do not exist yet): records and bad ones.
void check_sft_data(RecipeCheck& out, const StagedRecipe& recipe, const StageSpec& stage) {
  rapidjson::Document own = json::parse(stage.config_json, "stage");
  std::vector<std::string> files;
  for (const char* key : {"data", "heldout_data"}) {
    auto found = own.FindMember(key);
    if (found == own.MemberEnd()) continue;
    auto take = [&](const rapidjson::Value& v) {
      if (v.IsString() && v.GetString()[0] != '@') files.emplace_back(v.GetString());
    };
    if (found->value.IsArray()) {
      for (const auto& v : found->value.GetArray()) take(v);
    } else {
      take(found->value);
    }
  }
  const bool drop = own.HasMember("on_bad_example") && own["on_bad_example"].IsString() &&
                    std::string(own["on_bad_example"].GetString()) == "drop";
  for (const auto& file : files) {
    const fs::path path = recipe.base_dir / file;
    try {
      ChatDataStats stats;
      load_chat_jsonl(path, drop ? BadExamplePolicy::kDrop : BadExamplePolicy::kError, &stats);
      add(out, "stage " + stage.name + " data", true,
          path.lexically_normal().string() + ": " + std::to_string(stats.kept) + " conversations" +
              (stats.dropped_total() ? ", " + std::to_string(stats.dropped_total()) + " bad ones dropped" : ""));
    } catch (const std::exception& e) {
      add(out, "stage " + stage.name + " data", false, e.what());
    }
  }
}

// A number or string key of a stage's JSON as text, else `fallback` (the documented default).
std::string key_text(const rapidjson::Value& stage, const char* key, const std::string& fallback) {
  auto found = stage.FindMember(key);
  if (found == stage.MemberEnd()) return fallback;
  if (found->value.IsString()) return found->value.GetString();
  if (found->value.IsArray()) {
    std::string out;
    for (const auto& v : found->value.GetArray())
      out += (out.empty() ? "" : ", ") + (v.IsString() ? std::string(v.GetString()) : json::to_string(v));
    return out;
  }
  return json::to_string(found->value);
}

// What an sft, distill or rejection_sample stage would do, from its keys (their checks passed).
std::string stage_plan(const StageSpec& stage) {
  rapidjson::Document own = json::parse(stage.config_json, "stage");
  if (stage.kind == "rejection_sample")
    return "rejection sampling of " + key_text(own, "data", "the recipe's data.train") + ": " +
           key_text(own, "samples", "4") + " samples per prompt (temperature " + key_text(own, "temperature", "0.6") +
           "), filters " + key_text(own, "filters", "the default ones") + ", at most " + key_text(own, "keep", "1") +
           " kept per prompt, into exports/" + stage.name + ".jsonl";
  return "SFT on " + key_text(own, "data", "-") + ": " + key_text(own, "epochs", "1") + " epoch(s), lr " +
         key_text(own, "lr", "1e-05") + ", loss on the assistant tokens only";
}

}  // namespace

RecipeCheck check_staged_recipe(const StagedRecipe& recipe, const RunOptions& options) {
  RecipeCheck out;
  fs::path run_dir = options.run_dir.empty() ? fs::path("runs") / recipe.name : options.run_dir;
  try {
    run_dir = checked_run_dir(recipe.name, recipe.canonical_json, options);
    add(out, "run directory", true, run_dir.string() + (options.resume ? " (resume)" : ""));
  } catch (const std::exception& e) {
    add(out, "run directory", false, e.what());
  }
  out.plan.push_back("recipe " + recipe.name + " (" + recipe.file.string() + "), " + std::to_string(recipe.stages.size()) +
                     " stages, run directory " + run_dir.string() + ", base model " + recipe.model.path);
  // The base model ("@base"): there, or buildable by model.build (a GRPO stage checks it again,
  // with its config and tokenizer read).
  try {
    Recipe base;
    base.file = recipe.file;
    base.model = recipe.model;
    check_model_source(base);
    add(out, "model", true, recipe.model.path + (fs::exists(fs::path(recipe.model.path) / "config.json")
                                                     ? " holds a model"
                                                     : " is built from " + recipe.model.build.string()));
  } catch (const std::exception& e) {
    add(out, "model", false, e.what());
  }
  for (const auto& stage : recipe.stages) {
    StageInput in;
    in.recipe = &recipe;
    in.stage = &stage;
    in.model_dir = recipe.model.path;
    const std::string from = stage.model == "@base" ? "the base model" : stage.model;
    try {
      stage_kind(stage.kind).check(in);
      add(out, "stage " + stage.name, true, stage.kind + " on " + from);
    } catch (const std::exception& e) {
      add(out, "stage " + stage.name, false, e.what());
      continue;
    }
    out.plan.push_back("stage " + stage.name + " (" + stage.kind + ") on " + from + ":");
    if (stage.model[0] != '@') {
      // A model directory of the stage's own (a teacher, a student base): there, or built by
      // the stage's "build" when the stage starts.
      try {
        check_model_source(stage_model_recipe(recipe, stage));
        const bool there = fs::exists(fs::path(stage.model) / "config.json");
        add(out, "stage " + stage.name + " model", true,
            stage.model + (there ? " holds a model" : " is built from " + stage.model_build.string()));
        if (!there) out.plan.push_back("  build its model " + stage.model + " from " + stage.model_build.string());
      } catch (const std::exception& e) {
        add(out, "stage " + stage.name + " model", false, e.what());
      }
    }
    if (stage.kind == "grpo") {
      // The stage's recipe, checked with the base model in place of an earlier stage's (same
      // shape and tokenizer); the run directory was checked above for the whole recipe.
      const Recipe r = parse_recipe(in.merged_json(), recipe.file);
      RunOptions o = options;
      o.resume = false;
      o.run_dir = fs::temp_directory_path() / "aha-check-no-such-run-dir";
      const RecipeCheck sub = check_recipe(r, o);
      for (const auto& item : sub.items)
        if (item.what != "run directory") out.items.push_back({"stage " + stage.name + ": " + item.what, item.ok, item.detail});
      for (const auto& line : sub.plan)
        if (line.rfind("recipe ", 0) != 0) out.plan.push_back("  " + line);
    } else {
      out.plan.push_back("  " + stage_plan(stage));
      if (stage.kind == "sft" || stage.kind == "distill") check_sft_data(out, recipe, stage);
    }
  }
  return out;
}

}  // namespace aha::recipes
