#include "recipes/runner/sft_stage.h"

#include <rapidjson/document.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/progress_bar.h"
#include "core/run_store.h"
#include "datasets/chat_render.h"
#include "datasets/dataset_spec.h"
#include "datasets/prompt_template.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/lm_trainer.h"
#include "policy/learner/sft_packing.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/evaluation.h"
#include "recipes/runner/sampling.h"
#include "recipes/runner/sft_data.h"
#include "rollout/rollout_engine.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using json::ObjectReader;
using Metrics = std::vector<std::pair<std::string, double>>;

struct SftConfig {
  std::vector<std::string> data, heldout_data;
  double heldout_fraction = 0;
  std::string template_name = "r1_zero", system_prompt;
  BadExamplePolicy on_bad_example = BadExamplePolicy::kError;
  int64_t max_length = 1024, row_tokens = 0, batch_tokens = 8192, micro_batch_rows = 0, epochs = 1;
  bool packing = true;
  double lr = 1e-5, min_lr_ratio = 0, weight_decay = 0, max_grad_norm = 1.0;
  int64_t warmup_steps = 0;
  std::string lr_decay = "cosine";
  uint64_t seed = 1;
  int64_t eval_every = 0, checkpoint_every = 0, keep_last = 2;
  bool fp32_master = false;
};

std::string context(const StageInput& in) {
  return "recipe " + in.recipe->file.string() + ": stage '" + in.stage->name + "' (" + in.stage->kind + ")";  // sft or distill
}

std::vector<std::string> string_list(const ObjectReader& r, const char* key) {
  std::vector<std::string> out;
  if (!r.has(key)) return out;
  const auto& v = r.get(key);
  auto bad = [&] { return Error(r.context() + ": '" + key + "' must be a file name or a list of them (\"@stage\" names an earlier stage's data)"); };
  if (v.IsString()) {
    out.emplace_back(v.GetString(), v.GetStringLength());
  } else if (v.IsArray()) {
    for (const auto& item : v.GetArray()) {
      if (!item.IsString()) throw bad();
      out.emplace_back(item.GetString(), item.GetStringLength());
    }
  } else {
    throw bad();
  }
  return out;
}

SftConfig parse_config(const StageInput& in) {
  const std::string where = context(in);
  rapidjson::Document shared = json::parse(in.recipe->shared_json, where);
  rapidjson::Document own = json::parse(in.stage->config_json, where);
  SftConfig c;
  // Inherited from the recipe's top level, as a GRPO stage inherits them.
  ObjectReader top(shared, where);
  c.template_name = top.get_string("template", c.template_name);
  c.system_prompt = top.get_string("system_prompt", "");
  if (top.has("schedule") && top.get("schedule").IsObject() && top.get("schedule").HasMember("seed"))
    c.seed = static_cast<uint64_t>(top.object("schedule").get_int("seed"));
  // algorithm.fp32_master_weights: a bf16 policy trained with float32 masters in the GRPO stages
  // keeps them in its SFT stages too (one switch for the whole flow).
  if (top.has("algorithm") && top.get("algorithm").IsObject())
    c.fp32_master = top.object("algorithm").get_bool("fp32_master_weights", c.fp32_master);

  ObjectReader r(own, where);
  r.reject_unknown({"name", "kind", "model", "data", "heldout_data", "heldout_fraction", "template", "system_prompt",
                    "on_bad_example", "max_length", "packing", "row_tokens", "batch_tokens", "micro_batch_rows",
                    "epochs", "lr", "warmup_steps", "lr_decay", "min_lr_ratio", "weight_decay", "max_grad_norm",
                    "seed", "eval_every", "checkpoint_every", "keep_last"});
  c.data = string_list(r, "data");
  if (c.data.empty()) throw Error(where + ": 'data' must name at least one chat data file");
  c.heldout_data = string_list(r, "heldout_data");
  c.heldout_fraction = r.get_double("heldout_fraction", c.heldout_fraction);
  if (!(c.heldout_fraction >= 0 && c.heldout_fraction < 1))
    throw Error(where + ": 'heldout_fraction' must be in [0, 1)");
  if (c.heldout_fraction > 0 && !c.heldout_data.empty())
    throw Error(where + ": give 'heldout_data' or 'heldout_fraction', not both");
  c.template_name = r.get_string("template", c.template_name);
  c.system_prompt = r.get_string("system_prompt", c.system_prompt);
  try {
    c.on_bad_example = parse_bad_example_policy(r.get_string("on_bad_example", "error"));
  } catch (const Error& e) {
    throw Error(where + ": 'on_bad_example': " + e.what());
  }
  auto positive = [&](const char* key, int64_t fallback) {
    const int64_t v = r.get_int(key, fallback);
    if (v < 1) throw Error(where + ": '" + key + "' must be >= 1, got " + std::to_string(v));
    return v;
  };
  auto non_negative = [&](const char* key, int64_t fallback) {
    const int64_t v = r.get_int(key, fallback);
    if (v < 0) throw Error(where + ": '" + key + "' must be >= 0, got " + std::to_string(v));
    return v;
  };
  c.max_length = positive("max_length", c.max_length);
  if (c.max_length < 2) throw Error(where + ": 'max_length' must be >= 2");
  c.packing = r.get_bool("packing", c.packing);
  c.row_tokens = positive("row_tokens", c.max_length);
  if (c.row_tokens < c.max_length)
    throw Error(where + ": 'row_tokens' (" + std::to_string(c.row_tokens) + ") must be >= 'max_length' (" +
                std::to_string(c.max_length) + "), or an example would not fit a row");
  c.batch_tokens = positive("batch_tokens", c.batch_tokens);
  c.micro_batch_rows = non_negative("micro_batch_rows", c.micro_batch_rows);
  c.epochs = positive("epochs", c.epochs);
  c.lr = r.get_double("lr", c.lr);
  if (!(c.lr > 0)) throw Error(where + ": 'lr' must be > 0");
  c.warmup_steps = non_negative("warmup_steps", c.warmup_steps);
  c.lr_decay = r.get_string("lr_decay", c.lr_decay);
  try {
    policy::parse_lr_decay(c.lr_decay);
  } catch (const Error& e) {
    throw Error(where + ": 'lr_decay': " + e.what());
  }
  c.min_lr_ratio = r.get_double("min_lr_ratio", c.min_lr_ratio);
  c.weight_decay = r.get_double("weight_decay", c.weight_decay);
  c.max_grad_norm = r.get_double("max_grad_norm", c.max_grad_norm);
  c.seed = static_cast<uint64_t>(non_negative("seed", static_cast<int64_t>(c.seed)));
  c.eval_every = non_negative("eval_every", c.eval_every);
  c.checkpoint_every = non_negative("checkpoint_every", c.checkpoint_every);
  c.keep_last = non_negative("keep_last", c.keep_last);
  if (c.template_name != "model") {
    try {
      ChatRenderer(c.template_name, {}, c.system_prompt);
    } catch (const Error& e) {
      throw Error(where + ": 'template': " + e.what());
    }
  }
  return c;
}

// The generation evaluation a GRPO stage would run: the recipe's shared data.eval, eval,
// rewards and accuracy_reward, read as a single-stage recipe (with the eval data standing in
// for the training data it does not need). None when the recipe has no eval data or rewards.
std::optional<Recipe> eval_recipe(const StageInput& in) {
  rapidjson::Document doc = json::parse(in.recipe->shared_json, context(in));
  auto data = doc.FindMember("data");
  if (!doc.HasMember("rewards") || data == doc.MemberEnd() || !data->value.IsObject()) return std::nullopt;
  auto eval = data->value.FindMember("eval");
  if (eval == data->value.MemberEnd() || !eval->value.IsObject() || eval->value.MemberCount() == 0) return std::nullopt;
  rapidjson::Value first(eval->value.MemberBegin()->value, doc.GetAllocator());
  data->value.RemoveMember("train");
  data->value.AddMember("train", first, doc.GetAllocator());
  try {
    return parse_recipe(json::to_string(doc), in.recipe->file);
  } catch (const Error& e) {
    throw Error(context(in) + ": the recipe's evaluation: " + e.what());
  }
}

void prune(const fs::path& stage_dir, int64_t keep_last) {
  if (keep_last <= 0 || !fs::exists(stage_dir)) return;
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const auto& e : fs::directory_iterator(stage_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.find('.') != std::string::npos || !fs::exists(e.path() / "state.json"))
      continue;
    steps.emplace_back(std::stoll(name.substr(5)), e.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + keep_last < steps.size(); ++i) remove_tree(steps[i].second);
}

// splitmix64 of (seed, i): which examples are held out with heldout_fraction.
bool held_out(uint64_t seed, size_t i, double fraction) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / 9007199254740992.0 < fraction;
}

}  // namespace

void check_sft_stage(const StageInput& in) {
  parse_config(in);
  eval_recipe(in);
}

StageResult run_sft_stage(const StageInput& in) {
  const SftConfig c = parse_config(in);
  const auto evaluation = eval_recipe(in);
  const std::string where = context(in);
  const fs::path stage_dir = in.checkpoint_dir();
  const torch::Device device = choose_device(in.recipe->model.device);
  if (in.recipe->model.threads > 0) torch::set_num_threads(static_cast<int>(in.recipe->model.threads));

  // Data, before the model is loaded: a bad record stops the stage before any work.
  const Tokenizer tokenizer = Tokenizer::from_dir(in.model_dir);
  const ChatRenderer renderer(c.template_name, in.model_dir, c.system_prompt);
  auto files = [&](const std::vector<std::string>& refs) {
    std::vector<fs::path> out;
    for (const auto& ref : refs) out.push_back(in.resolve_data(ref));
    return out;
  };
  ChatDataStats stats;
  auto all = load_sft_examples(files(c.data), renderer, tokenizer, c.max_length, c.on_bad_example, &stats);
  std::vector<policy::SftSequence> train, heldout;
  if (!c.heldout_data.empty()) {
    heldout = load_sft_examples(files(c.heldout_data), renderer, tokenizer, c.max_length, c.on_bad_example, &stats);
    train = std::move(all);
  } else {
    for (size_t i = 0; i < all.size(); ++i)
      (held_out(c.seed, i, c.heldout_fraction) ? heldout : train).push_back(std::move(all[i]));
  }
  require(!train.empty(), where + ": no training example is left (" + std::to_string(stats.records) + " records, " +
                              std::to_string(stats.dropped_total()) + " dropped)");
  std::vector<int64_t> lengths;
  for (const auto& s : train) lengths.push_back(static_cast<int64_t>(s.ids.size()));
  const int64_t rows_per_step = std::max<int64_t>(1, c.batch_tokens / c.row_tokens);
  const int64_t rows_per_epoch = static_cast<int64_t>(policy::epoch_rows(lengths, c.row_tokens, c.packing, c.seed, 0).size());
  const int64_t steps_per_epoch = (rows_per_epoch + rows_per_step - 1) / rows_per_step;
  const int64_t total_steps = steps_per_epoch * c.epochs;

  LoadOptions load;
  load.device = device;
  load.dtype = parse_dtype(in.recipe->model.dtype);
  auto model = load_model(in.model_dir, load);
  const auto eos = default_eos_ids(in.model_dir, model->config(), &tokenizer);
  const int64_t pad_id = tokenizer.pad_id().value_or(eos.empty() ? 0 : eos.front());
  policy::LmTrainerOptions topt;
  topt.optimizer.lr = c.lr;
  topt.optimizer.max_grad_norm = c.max_grad_norm;
  topt.optimizer.schedule.warmup_steps = c.warmup_steps;
  topt.optimizer.schedule.decay = policy::parse_lr_decay(c.lr_decay);
  topt.optimizer.schedule.min_lr_ratio = c.min_lr_ratio;
  topt.optimizer.schedule.total_steps = std::max(total_steps, c.warmup_steps + 1);
  topt.weight_decay = c.weight_decay;
  topt.micro_batch_size = c.micro_batch_rows;
  topt.optimizer.fp32_master = c.fp32_master;
  policy::LmTrainer trainer(std::move(model), topt);

  RunStore store(in.run_dir / "run.db");
  const int64_t stage_id = store.begin_stage(in.stage->name, in.stage->kind, in.stage->config_json);  // sft or distill
  int64_t step = 0;
  if (in.resume) {
    if (auto latest = policy::latest_checkpoint(stage_dir)) {
      step = policy::load_checkpoint(*latest, trainer).step;
      store.add_event(stage_id, step, "info", "resumed", "resumed from " + latest->string());
    }
  }
  if (step == 0) {
    Metrics data{{"data/records", double(stats.records)},
                 {"data/examples", double(train.size())},
                 {"data/heldout_examples", double(heldout.size())},
                 {"data/dropped", double(stats.dropped_total())},
                 {"data/rows_per_epoch", double(rows_per_epoch)}};
    for (const auto& [reason, n] : stats.dropped) data.emplace_back("data/dropped/" + reason, double(n));
    store.write_metrics(stage_id, 0, data);
    if (stats.dropped_total() > 0 && in.options.progress)
      std::fprintf(stderr, "stage %s: %lld of %lld records dropped as bad\n", in.stage->name.c_str(),
                   static_cast<long long>(stats.dropped_total()), static_cast<long long>(stats.records));
  }

  std::unique_ptr<RolloutEngine> engine;
  std::vector<EvalDataset> eval_sets;
  if (evaluation) {
    for (const auto& [name, spec] : evaluation->eval_data) eval_sets.push_back({name, load_dataset(spec, in.recipe->base_dir)});
    engine = std::make_unique<RolloutEngine>(trainer.model(), EngineOptions{}, make_text_decoder(tokenizer));
  }
  auto evaluate_now = [&](int64_t at) {
    Metrics m;
    if (!heldout.empty()) {
      torch::NoGradGuard no_grad;
      double nll = 0;
      int64_t tokens = 0;
      auto rows = policy::epoch_rows([&] {
        std::vector<int64_t> l;
        for (const auto& s : heldout) l.push_back(static_cast<int64_t>(s.ids.size()));
        return l;
      }(), c.row_tokens, c.packing, c.seed, 0);
      for (size_t i = 0; i < rows.size(); i += size_t(rows_per_step)) {
        std::vector<std::vector<const policy::SftSequence*>> part;
        for (size_t j = i; j < std::min(rows.size(), i + size_t(rows_per_step)); ++j) {
          part.emplace_back();
          for (size_t k : rows[j]) part.back().push_back(&heldout[k]);
        }
        int64_t n = 0;
        nll += policy::lm_nll_sum(trainer.model(), policy::make_sft_batch(part, pad_id), &n).item<double>();
        tokens += n;
      }
      if (tokens > 0) m.emplace_back("eval/heldout_loss", nll / double(tokens));
    }
    if (evaluation && at > 0) {
      EvalOptions o;
      o.prompt_template = PromptTemplate::from_name(evaluation->template_name, evaluation->template_stop_strings,
                                                    in.model_dir, evaluation->system_prompt);
      o.samples = evaluation->eval.samples;
      o.temperature = evaluation->eval.temperature;
      o.top_p = evaluation->eval.top_p;
      o.max_new_tokens = evaluation->eval.max_new_tokens;
      o.prompts_per_batch = evaluation->eval.prompts_per_batch;
      o.seed = c.seed;
      o.eos_token_ids = eos;
      o.correctness_reward = accuracy_spec_json(*evaluation);
      o.language_reward = language_spec_json(*evaluation);
      for (auto& kv : eval_metrics(evaluate(*engine, tokenizer, eval_sets, o))) m.push_back(kv);
    }
    if (!m.empty()) store.write_metrics(stage_id, at, m);
  };

  const int64_t first_step = step;
  ProgressBar bar(total_steps, "steps", 10.0);
  bar.restart_clock(step);
  try {
    if (step == 0) evaluate_now(0);
    std::vector<std::vector<size_t>> rows;
    int64_t rows_epoch = -1;
    while (step < total_steps) {
      const int64_t epoch = step / steps_per_epoch, within = step % steps_per_epoch;
      if (epoch != rows_epoch) rows = policy::epoch_rows(lengths, c.row_tokens, c.packing, c.seed, epoch), rows_epoch = epoch;
      std::vector<std::vector<const policy::SftSequence*>> part;
      for (int64_t j = within * rows_per_step; j < std::min<int64_t>(rows_per_epoch, (within + 1) * rows_per_step); ++j) {
        part.emplace_back();
        for (size_t k : rows[size_t(j)]) part.back().push_back(&train[k]);
      }
      const auto m = trainer.train_step(policy::make_sft_batch(part, pad_id));
      ++step;
      store.write_metrics(stage_id, step, {{"sft/loss", m.loss}, {"sft/lr", m.lr}, {"sft/tokens", double(m.tokens)},
                                           {"sft/grad_norm", m.grad_norm}, {"sft/epoch", double(epoch)}});
      if (!m.applied) store.add_event(stage_id, step, "warning", "skipped_step", m.skip_reason);
      const bool last = step == total_steps;
      const bool stopping = !last && in.options.stop_after_steps > 0 && step - first_step >= in.options.stop_after_steps;
      if ((c.checkpoint_every > 0 && step % c.checkpoint_every == 0) || last || stopping) {
        auto path = policy::save_checkpoint(stage_dir, {step, 0}, trainer, in.model_dir);
        store.add_checkpoint(stage_id, step, path.string());
        prune(stage_dir, c.keep_last);
      }
      if ((c.eval_every > 0 && step % c.eval_every == 0) || last) evaluate_now(step);
      if (in.options.progress) {
        char loss[32];
        std::snprintf(loss, sizeof loss, "%.3f", m.loss);
        bar.update(step, {{"loss", loss}});
      }
      if (stopping) break;
    }
    if (in.options.progress) bar.finish();
    store.finish_stage(stage_id, step == total_steps ? "done" : "stopped");
  } catch (...) {
    if (in.options.progress) bar.finish();
    try {
      store.finish_stage(stage_id, "failed");
    } catch (...) {
    }
    throw;
  }
  StageResult result;
  result.steps = step;
  result.finished = step == total_steps;
  if (auto latest = policy::latest_checkpoint(stage_dir)) result.output = *latest / "model";
  return result;
}

}  // namespace aha::recipes
