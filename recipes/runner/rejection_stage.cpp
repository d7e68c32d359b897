#include "recipes/runner/rejection_stage.h"

#include <cstdio>
#include <optional>

#include "core/error.h"
#include "core/json.h"
#include "core/progress_bar.h"
#include "core/run_store.h"
#include "datasets/dataset_spec.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/rejection_sampling.h"
#include "recipes/runner/reward_selection.h"
#include "recipes/runner/sampling.h"
#include "reward/reward_registry.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

struct RejectionStageConfig {
  std::vector<DatasetSpec> data;
  int64_t limit = 0;
  RejectionSamplingOptions options;
  std::string template_name = "r1_zero", system_prompt;
  std::vector<std::string> stop_strings;
  std::string device = "auto", dtype = "float32";
  int64_t threads = 0;
};

std::vector<std::string> strings(const rapidjson::Value& v, const std::string& what) {
  require(v.IsArray(), what + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& s : v.GetArray()) {
    require(s.IsString(), what + " must be a list of strings");
    out.emplace_back(s.GetString(), s.GetStringLength());
  }
  return out;
}

std::vector<DatasetSpec> data_specs(const rapidjson::Value& v, const std::string& what) {
  std::vector<DatasetSpec> out;
  auto one = [&](const rapidjson::Value& spec) {
    require(spec.IsObject(), what + " must be a data set spec object or a list of them (a \"@stage\" data file "
                                    "holds conversations, not prompts)");
    // A data set's "rewards" (reward_selection.h) say what scores it in GRPO; the rejection
    // filters read the components they name, so the spec alone is wanted here.
    out.push_back(parse_dataset_spec(split_reward_selection(spec, what).first, what));
  };
  if (v.IsArray()) {
    for (const auto& s : v.GetArray()) one(s);
  } else {
    one(v);
  }
  require(!out.empty(), what + " lists no data set");
  return out;
}

RejectionStageConfig parse_config(const StageInput& in) {
  const std::string ctx = "recipe " + in.recipe->file.string() + ": stage '" + in.stage->name + "' (rejection_sample)";
  RejectionStageConfig c;
  rapidjson::Document own = json::parse(in.stage->config_json, ctx);
  rapidjson::Document shared = json::parse(in.recipe->shared_json, ctx);
  json::ObjectReader s(own, ctx);
  s.reject_unknown({"name", "kind", "model", "data", "limit", "samples", "keep", "filters", "language_threshold",
                    "max_paragraph_chars", "min_tokens", "max_tokens", "near_dup_threshold", "format_reward",
                    "language_reward", "accuracy_reward", "temperature", "top_p", "top_k", "max_new_tokens", "seed",
                    "prompts_per_batch", "reasoning", "template", "system_prompt", "stop_strings", "rewards"});
  // A key of the stage, else of the recipe's shared keys.
  auto pick = [&](const char* key) -> const rapidjson::Value* {
    if (own.HasMember(key) && !own[key].IsNull()) return &own[key];
    if (shared.HasMember(key) && !shared[key].IsNull()) return &shared[key];
    return nullptr;
  };
  if (own.HasMember("data")) {
    c.data = data_specs(own["data"], ctx + ": 'data'");
  } else {
    require(shared.HasMember("data") && shared["data"].IsObject() && shared["data"].HasMember("train"),
            ctx + ": no 'data' (the prompts), and the recipe has no data.train to default to");
    c.data = data_specs(shared["data"]["train"], ctx + ": data.train");
  }
  c.limit = s.get_int("limit", 0);
  require(c.limit >= 0, ctx + ": 'limit' must be >= 0");
  if (auto* t = pick("template")) {
    require(t->IsString(), ctx + ": 'template' must be a string");
    c.template_name = t->GetString();
  }
  if (auto* t = pick("system_prompt")) {
    require(t->IsString(), ctx + ": 'system_prompt' must be a string");
    c.system_prompt = t->GetString();
  }
  if (auto* t = pick("stop_strings")) c.stop_strings = strings(*t, ctx + ": 'stop_strings'");
  if (shared.HasMember("model") && shared["model"].IsObject()) {
    json::ObjectReader m(shared["model"], ctx + ": model");
    c.device = m.get_string("device", c.device);
    c.dtype = m.get_string("dtype", c.dtype);
    c.threads = m.get_int("threads", 0);
  }
  auto& o = c.options;
  auto& f = o.filters;
  if (auto* a = pick("accuracy_reward")) {
    require(a->IsString(), ctx + ": 'accuracy_reward' must be a string");
    f.accuracy_reward = a->GetString();
  }
  f.format_reward = s.get_string("format_reward", f.format_reward);
  f.language_reward = s.get_string("language_reward", f.language_reward);
  const bool r1 = c.template_name == "r1_zero" || c.template_name == "r1_zero_think";
  std::string filters = r1 ? "correct,format,exact_dup" : "correct,exact_dup";
  if (own.HasMember("filters")) {
    filters.clear();
    for (const auto& name : strings(own["filters"], ctx + ": 'filters'")) filters += (filters.empty() ? "" : ",") + name;
  }
  enable_filters(f, filters, ctx + ": 'filters'");
  f.language_threshold = s.get_double("language_threshold", f.language_threshold);
  f.max_paragraph_chars = s.get_int("max_paragraph_chars", f.max_paragraph_chars);
  f.min_tokens = s.get_int("min_tokens", f.min_tokens);
  f.max_tokens = s.get_int("max_tokens", f.max_tokens);
  f.near_dup_threshold = s.get_double("near_dup_threshold", f.near_dup_threshold);
  o.samples = s.get_int("samples", 4);
  o.keep = s.get_int("keep", 1);
  o.temperature = s.get_double("temperature", 0.6);
  o.top_p = s.get_double("top_p", 1.0);
  o.top_k = s.get_int("top_k", 0);
  o.max_new_tokens = s.get_int("max_new_tokens", 1024);
  const int64_t seed = s.get_int("seed", 0);
  require(seed >= 0, ctx + ": 'seed' must be >= 0");
  o.seed = static_cast<uint64_t>(seed);
  o.prompts_per_batch = s.get_int("prompts_per_batch", 16);
  // "field" by default: the export feeds aha's SFT stage, which reads the reasoning from
  // reasoning_content and the answer from content (sft_record.h).
  o.layout = parse_reasoning_layout(s.get_string("reasoning", "field"), ctx + ": 'reasoning'");
  if (auto* r = pick("rewards")) {
    try {
      o.rewards = reward::reward_specs_from_json(json::to_string(*r), ctx + ": 'rewards'");
    } catch (const Error& e) {
      throw Error(ctx + ": " + e.what());
    }
  }
  // The template decides the default rewards and filters; "model" needs the model directory,
  // which a check does not have yet: a plain stand-in there.
  o.prompt_template = c.template_name == "model" && in.model_dir.empty()
                          ? PromptTemplate::custom("{prompt}", {})
                          : PromptTemplate::from_name(c.template_name, c.stop_strings, in.model_dir, c.system_prompt);
  if (o.rewards.empty()) o.rewards = default_rejection_rewards(o.prompt_template, f);
  try {
    validate(o);
    for (const auto& spec : o.rewards) reward::create_reward(spec);
  } catch (const Error& e) {
    throw Error(ctx + ": " + e.what());
  }
  o.stage = in.stage->name;
  return c;
}

// N of a checkpoint's ".../step-N/model", else -1.
int64_t step_of(const fs::path& model_dir) {
  const std::string parent = model_dir.parent_path().filename().string();
  if (parent.rfind("step-", 0) != 0) return -1;
  try {
    return std::stoll(parent.substr(5));
  } catch (...) {
    return -1;
  }
}

}  // namespace

void check_rejection_stage(const StageInput& in) {
  // Checked before any stage runs, when the model (often an earlier stage's output) does not
  // exist yet: every key is parsed, and a "model" template is resolved later, by the run.
  StageInput before_any_model = in;
  before_any_model.model_dir.clear();
  parse_config(before_any_model);
}

StageResult run_rejection_stage(const StageInput& in) {
  RejectionStageConfig c = parse_config(in);
  auto& o = c.options;
  std::vector<Example> examples;
  for (const auto& spec : c.data) {
    auto part = load_dataset(spec, in.recipe->base_dir);
    examples.insert(examples.end(), part.begin(), part.end());
  }
  if (c.limit > 0 && examples.size() > static_cast<size_t>(c.limit)) examples.resize(static_cast<size_t>(c.limit));
  require(!examples.empty(), "stage '" + in.stage->name + "': no prompts");
  o.model = in.model_dir.string();
  o.step = step_of(in.model_dir);
  o.data = in.stage->name + " prompts";

  const torch::Device device = choose_device(c.device);
  if (c.threads > 0) torch::set_num_threads(static_cast<int>(c.threads));
  LoadOptions load;
  load.device = device;
  load.dtype = parse_dtype(c.dtype);
  auto model = load_model(in.model_dir, load);
  const Tokenizer tokenizer = Tokenizer::from_dir(in.model_dir);
  o.eos_token_ids = default_eos_ids(in.model_dir, model->config(), &tokenizer);
  RolloutEngine engine(*model, {}, make_text_decoder(tokenizer));

  const fs::path out = in.export_path();
  fs::create_directories(out.parent_path());
  const bool continuing = in.resume && fs::exists(ResumableJsonl::progress_path(out));
  RunStore store(in.run_dir / "run.db");
  const int64_t stage_id = store.begin_stage(in.stage->name, "rejection_sample", in.stage->config_json);
  std::optional<ProgressBar> bar;
  RejectionStats stats;
  try {
    stats = run_rejection_sampling(engine, tokenizer, examples, o, out,
                                   continuing ? ResumableJsonl::Mode::resume : ResumableJsonl::Mode::fresh,
                                   [&](int64_t done, int64_t total, int64_t tokens) {
                                     if (!in.options.progress) return;
                                     if (!bar) bar.emplace(total, "responses");
                                     bar->update(done, {{"tokens", std::to_string(tokens)}});
                                   });
  } catch (...) {
    store.finish_stage(stage_id, "failed");
    throw;
  }
  if (bar) bar->finish();
  std::vector<std::pair<std::string, double>> metrics = {
      {"rejection/prompts", static_cast<double>(stats.prompts)},
      {"rejection/sampled", static_cast<double>(stats.sampled)},
      {"rejection/kept", static_cast<double>(stats.kept)},
      {"rejection/prompts_without_kept", static_cast<double>(stats.prompts_without_kept)},
      {"rejection/kept_tokens_mean", stats.mean_tokens}};
  for (const auto& [filter, n] : stats.dropped) metrics.emplace_back("rejection/dropped/" + filter, static_cast<double>(n));
  store.write_metrics(stage_id, 0, metrics);
  store.finish_stage(stage_id, "done");
  if (in.options.progress)
    std::fprintf(stderr, "stage %s: kept %lld of %lld responses (%lld prompts) -> %s\n", in.stage->name.c_str(),
                 static_cast<long long>(stats.kept), static_cast<long long>(stats.sampled),
                 static_cast<long long>(stats.prompts), out.string().c_str());
  StageResult result;
  result.output = out;
  result.finished = true;
  return result;
}

}  // namespace aha::recipes
