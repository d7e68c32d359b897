#include "recipes/runner/stage_graph.h"

#include <rapidjson/document.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/json_override.h"
#include "core/run_store.h"
#include "recipes/runner/base_model.h"
#include "recipes/runner/pretrain_spec.h"
#include "recipes/runner/rejection_stage.h"
#include "recipes/runner/sft_stage.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using json::ObjectReader;

constexpr const char* kOutputKey = "stage_output.";  // run.db config key of a stage's output

// Objects merge member by member (b wins); anything else in b replaces a.
void merge_into(rapidjson::Value& a, const rapidjson::Value& b, rapidjson::Document::AllocatorType& alloc) {
  if (!a.IsObject() || !b.IsObject()) {
    a.CopyFrom(b, alloc);
    return;
  }
  for (auto it = b.MemberBegin(); it != b.MemberEnd(); ++it) {
    auto found = a.FindMember(it->name);
    if (found == a.MemberEnd()) {
      a.AddMember(rapidjson::Value(it->name, alloc), rapidjson::Value(it->value, alloc), alloc);
    } else {
      merge_into(found->value, it->value, alloc);
    }
  }
}

std::string stage_context(const StagedRecipe& r, const StageSpec& s) {
  return "recipe " + r.file.string() + ": stage '" + s.name + "' (" + s.kind + ")";
}

// ---- grpo: a single-stage recipe's keys, merged over the shared ones -------------------------

Recipe grpo_recipe(const StageInput& in) {
  try {
    return parse_recipe(in.merged_json(), in.recipe->file);
  } catch (const Error& e) {
    throw Error(stage_context(*in.recipe, *in.stage) + ": " + e.what());
  }
}

void check_grpo(const StageInput& in) { grpo_recipe(in); }

StageResult run_grpo_kind(const StageInput& in) {
  const Recipe recipe = grpo_recipe(in);
  RunOptions o = in.options;
  o.run_dir = in.run_dir;
  o.resume = in.resume;
  o.stage_name = in.stage->name;
  o.stage_model = in.model_dir;
  const RunSummary summary = run_grpo(recipe, o);
  StageResult result;
  result.steps = summary.steps;
  result.finished = summary.steps == recipe.schedule.steps;
  if (!summary.final_checkpoint.empty()) result.output = summary.final_checkpoint / "model";
  return result;
}

void check_name(const std::string& name, const std::string& where) {
  bool ok = !name.empty() && name != "base";
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
  if (!ok)
    throw Error(where + ": stage name '" + name + "' must be non-empty, of letters, digits, '_' and '-', and not "
                "\"base\" (\"@base\" names the recipe's model)");
}

// The "@name" strings of a stage's "data" (a string or a list of strings; objects hold none).
std::vector<std::string> data_references(const rapidjson::Value& stage) {
  std::vector<std::string> refs;
  auto found = stage.FindMember("data");
  if (found == stage.MemberEnd()) return refs;
  auto take = [&](const rapidjson::Value& v) {
    if (v.IsString() && v.GetStringLength() > 0 && v.GetString()[0] == '@') refs.emplace_back(v.GetString() + 1);
  };
  if (found->value.IsArray()) {
    for (const auto& v : found->value.GetArray()) take(v);
  } else {
    take(found->value);
  }
  return refs;
}

const StageSpec* find_stage(const StagedRecipe& r, const std::string& name) {
  for (const auto& s : r.stages)
    if (s.name == name) return &s;
  return nullptr;
}

// Checks one "@name" reference of stage s to an output of the given kind.
void check_reference(const StagedRecipe& r, const StageSpec& s, const std::string& key, const std::string& name,
                     StageOutput wanted) {
  const std::string where = stage_context(r, s) + ": '" + key + "': \"@" + name + "\"";
  const StageSpec* target = find_stage(r, name);
  if (!target) {
    std::string known = "base";
    for (const auto& t : r.stages)
      if (t.index < s.index) known += ", " + t.name;
    throw Error(where + " names no stage (earlier stages: " + known + ")");
  }
  if (target->index >= s.index)
    throw Error(where + " names " + (target->index == s.index ? "the stage itself" : "a later stage") +
                "; a stage can only use the output of an earlier one");
  const StageOutput out = stage_kind(target->kind).output;
  if (out != wanted)
    throw Error(where + " is a " + target->kind + " stage, whose output is " +
                (out == StageOutput::kModel ? "a model" : "a data file") + ", not " +
                (wanted == StageOutput::kModel ? "a model" : "a data file"));
}

}  // namespace

// ---- the kinds -------------------------------------------------------------------------------

const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> kinds = {
      {"sft", StageOutput::kModel, check_sft_stage, run_sft_stage},
      {"grpo", StageOutput::kModel, check_grpo, run_grpo_kind},
      {"rejection_sample", StageOutput::kData, check_rejection_stage, run_rejection_stage},
      // distill: SFT of a student (the stage's "model") on teacher data ("@rejection"): the sft
      // kind's check and runner, whatever they are.
      {"distill", StageOutput::kModel, [](const StageInput& in) { stage_kind("sft").check(in); },
       [](const StageInput& in) { return stage_kind("sft").run(in); }},
  };
  return kinds;
}

const StageKind& stage_kind(const std::string& kind) {
  std::string known;
  for (const auto& k : stage_kinds()) {
    if (k.kind == kind) return k;
    known += (known.empty() ? "" : ", ") + k.kind;
  }
  throw Error("unknown stage kind '" + kind + "' (kinds: " + known + ")");
}

// ---- StageInput ------------------------------------------------------------------------------

fs::path StageInput::checkpoint_dir() const { return run_dir / "checkpoints" / stage->name; }
fs::path StageInput::export_path() const { return run_dir / "exports" / (stage->name + ".jsonl"); }

fs::path StageInput::resolve_data(const std::string& ref) const {
  if (!ref.empty() && ref[0] == '@') {
    auto found = outputs.find(ref.substr(1));
    require(found != outputs.end(), stage_context(*recipe, *stage) + ": \"" + ref + "\" has no recorded output");
    return found->second;
  }
  return recipe->base_dir / ref;
}

std::string StageInput::merged_json() const {
  rapidjson::Document shared = json::parse(recipe->shared_json, "recipe");
  rapidjson::Document own = json::parse(stage->config_json, "stage");
  for (const char* key : {"name", "kind", "model"}) own.RemoveMember(key);
  merge_into(shared, own, shared.GetAllocator());
  return json::to_string(shared);
}

// ---- parsing ---------------------------------------------------------------------------------

bool is_staged_recipe(const fs::path& file, const std::vector<std::string>& overrides) {
  if (!fs::exists(file)) throw Error("recipe " + file.string() + ": no such file");
  const std::string what = "recipe " + file.string();
  rapidjson::Document doc = json::parse(read_file(file), what);
  require(doc.IsObject(), what + ": expected a JSON object");
  for (const auto& o : overrides) json::apply_override(doc, o, what);
  return doc.HasMember("stages");
}

StagedRecipe parse_staged_recipe(const std::string& json_text, const fs::path& file,
                                 const std::vector<std::string>& overrides) {
  const std::string what = "recipe " + file.string();
  rapidjson::Document doc = json::parse(json_text, what);
  require(doc.IsObject(), what + ": expected a JSON object");
  for (const auto& o : overrides) json::apply_override(doc, o, what);

  StagedRecipe r;
  r.file = file;
  r.base_dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  ObjectReader top(doc, what);
  // The shared keys are a single-stage recipe's; each is read where a stage uses it.
  top.reject_unknown({"name", "model", "template", "system_prompt", "stop_strings", "data", "rewards",
                      "accuracy_reward", "reward", "rollout", "algorithm", "schedule", "checkpoint", "eval",
                      "logging", "stages"});
  r.name = top.get_string("name");
  if (r.name.empty() || r.name.find_first_of("/\\ \t") != std::string::npos)
    throw Error(what + ": 'name' must be non-empty, without slashes or spaces (it names the run directory)");
  r.model = parse_model_section(json::to_string(top.get("model")), r.base_dir, what + ": model");

  const auto& stages = top.get("stages");
  if (!stages.IsArray() || stages.Empty())
    throw Error(what + ": 'stages' must be a non-empty list of {\"name\", \"kind\", ...} objects");
  std::set<std::string> names;
  for (rapidjson::SizeType i = 0; i < stages.Size(); ++i) {
    const std::string where = what + ": stages." + std::to_string(i);
    require(stages[i].IsObject(), where + ": expected an object with \"name\" and \"kind\"");
    ObjectReader s(stages[i], where);
    StageSpec spec;
    spec.index = i;
    spec.name = s.get_string("name");
    check_name(spec.name, where);
    if (!names.insert(spec.name).second) throw Error(where + ": a stage named '" + spec.name + "' comes earlier");
    spec.kind = s.get_string("kind");
    try {
      stage_kind(spec.kind);
    } catch (const Error& e) {
      throw Error(where + " ('" + spec.name + "'): " + e.what());
    }
    spec.model = s.get_string("model", spec.model);
    rapidjson::Document own;
    own.CopyFrom(stages[i], own.GetAllocator());
    if (s.has("build")) {
      if (spec.model.empty() || spec.model[0] == '@')
        throw Error(where + " ('" + spec.name + "'): 'build' makes the stage's model directory, so 'model' must be "
                    "a directory, not \"" + spec.model + "\"");
      spec.model_build = r.base_dir / s.get_string("build");
      own.RemoveMember("build");  // the graph's key, not the kind's
    }
    spec.config_json = json::to_string(own);
    r.stages.push_back(std::move(spec));
  }
  // References, once every name is known.
  for (rapidjson::SizeType i = 0; i < stages.Size(); ++i) {
    const StageSpec& s = r.stages[i];
    if (s.model.size() > 1 && s.model[0] == '@' && s.model != "@base")
      check_reference(r, s, "model", s.model.substr(1), StageOutput::kModel);
    for (const auto& ref : data_references(stages[i])) check_reference(r, s, "data", ref, StageOutput::kData);
  }
  doc.RemoveMember("stages");
  r.shared_json = json::to_string(doc);
  rapidjson::Document whole = json::parse(json_text, what);
  for (const auto& o : overrides) json::apply_override(whole, o, what);
  if (whole.HasMember("reward")) whole.RemoveMember("reward");  // where rewards are scored (recipe.h)
  r.canonical_json = json::to_string(whole);
  return r;
}

StagedRecipe load_staged_recipe(const fs::path& file, const std::vector<std::string>& overrides) {
  if (!fs::exists(file)) throw Error("recipe " + file.string() + ": no such file");
  return parse_staged_recipe(read_file(file), file, overrides);
}

void check_stages(const StagedRecipe& recipe) {
  for (const auto& stage : recipe.stages) {
    StageInput in;
    in.recipe = &recipe;
    in.stage = &stage;
    in.model_dir = recipe.model.path;
    for (const auto& earlier : recipe.stages) {
      if (earlier.index >= stage.index) break;
      in.outputs[earlier.name] = fs::path("checkpoints") / earlier.name;  // placeholders
    }
    stage_kind(stage.kind).check(in);
    if (!stage.model_build.empty()) {
      try {
        check_model_source(stage_model_recipe(recipe, stage));
        PretrainSpec::from_file(stage.model_build.string());
      } catch (const Error& e) {
        throw Error(stage_context(recipe, stage) + ": 'build': " + e.what());
      }
    }
  }
}

Recipe stage_model_recipe(const StagedRecipe& recipe, const StageSpec& stage) {
  Recipe r;
  r.file = recipe.file;
  r.model = recipe.model;
  r.model.path = stage.model;
  r.model.build = stage.model_build;
  r.model.build_overrides.clear();
  return r;
}

// ---- running ---------------------------------------------------------------------------------

namespace {

// The stage's last overall eval/* values, and a rejection_sample stage's rejection/* counts.
std::map<std::string, double> last_eval(const RunStore& store, int64_t stage) {
  std::map<std::string, double> out;
  for (const auto& name : store.metric_names(stage)) {
    const size_t slash = name.find('/');
    const std::string group = name.substr(0, slash);
    if ((group != "eval" && group != "rejection") || slash == std::string::npos ||
        name.find('/', slash + 1) != std::string::npos)
      continue;  // overall only
    auto series = store.metric_series(stage, name);
    if (!series.empty()) out[name] = series.back().value;
  }
  return out;
}

}  // namespace

StagedRunSummary run_staged(const StagedRecipe& recipe, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  check_stages(recipe);
  const fs::path run_dir = checked_run_dir(recipe.name, recipe.canonical_json, options);
  {
    Recipe base;
    base.model = recipe.model;
    check_model_source(base);
  }
  if (!recipe.model.build.empty()) {
    PretrainRunOptions pretrain;
    pretrain.device = choose_device(recipe.model.device);
    pretrain.progress = options.progress;
    pretrain.target_name = "model.path";
    ensure_base_model(PretrainSpec::from_file(recipe.model.build.string(), recipe.model.build_overrides),
                      recipe.model.path, pretrain);
  }
  fs::create_directories(run_dir);
  const fs::path db = run_dir / "run.db";
  {
    RunStore store(db);
    store.set_config("recipe", recipe.canonical_json);
  }

  StagedRunSummary summary;
  summary.run_dir = run_dir;
  summary.finished = true;
  std::map<std::string, fs::path> outputs;
  for (const auto& stage : recipe.stages) {
    // What run.db knows of this stage: a finished stage's output, or that it was started.
    std::optional<std::string> recorded;
    bool started = false;
    {
      RunStore store(db);
      if (auto out = store.config(kOutputKey + stage.name)) recorded = json::parse(*out, "run.db").GetString();
      for (const auto& s : store.stages()) started = started || s.name == stage.name;
    }
    if (recorded) {
      outputs[stage.name] = *recorded;
      if (options.progress) std::fprintf(stderr, "stage %s: done earlier (%s)\n", stage.name.c_str(), recorded->c_str());
      continue;
    }
    StageInput in;
    in.recipe = &recipe;
    in.stage = &stage;
    in.run_dir = run_dir;
    in.outputs = outputs;
    in.resume = started;
    in.options = options;
    in.model_dir = stage.model == "@base"     ? fs::path(recipe.model.path)
                   : stage.model[0] == '@'    ? outputs.at(stage.model.substr(1))
                                              : fs::path(stage.model);
    if (!stage.model_build.empty()) {
      PretrainRunOptions pretrain;
      pretrain.device = choose_device(recipe.model.device);
      pretrain.progress = options.progress;
      pretrain.target_name = "stage " + stage.name + " model";
      ensure_base_model(PretrainSpec::from_file(stage.model_build.string()), stage.model, pretrain);
    }
    if (options.progress)
      std::fprintf(stderr, "stage %s (%s): %s\n", stage.name.c_str(), stage.kind.c_str(), started ? "resumed" : "started");
    const StageResult result = stage_kind(stage.kind).run(in);
    if (!result.finished) {
      summary.finished = false;
      break;
    }
    require(!result.output.empty(), stage_context(recipe, stage) + ": finished without an output");
    {
      RunStore store(db);
      store.set_config(kOutputKey + stage.name, json::to_string(rapidjson::Value(result.output.string().c_str(),
                                                                                 static_cast<rapidjson::SizeType>(
                                                                                     result.output.string().size()))));
    }
    outputs[stage.name] = result.output;
  }

  RunStoreOptions read_only;
  read_only.read_only = true;
  RunStore store(db, read_only);
  const auto records = store.stages();
  for (const auto& stage : recipe.stages) {
    StageSummary s;
    s.name = stage.name;
    s.kind = stage.kind;
    s.status = "pending";
    for (const auto& rec : records)
      if (rec.name == stage.name) {
        s.status = rec.status;
        s.eval = last_eval(store, rec.id);
      }
    if (outputs.count(stage.name)) s.output = outputs[stage.name];
    summary.stages.push_back(std::move(s));
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace aha::recipes
