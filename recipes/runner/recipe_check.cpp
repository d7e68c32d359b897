#include "recipes/runner/recipe_check.h"

#include <c10/core/ScalarType.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "datasets/prompt_template.h"
#include "policy/learner/expert_parallel.h"
#include "policy/model/device_memory.h"
#include "policy/model/model_config.h"
#include "policy/model/model_io.h"
#include "policy/parallel/sharding_plan.h"
#include "policy/tokenizer/tokenizer.h"
#include "recipes/runner/pretrain_spec.h"
#include "recipes/runner/sampling.h"
#include "recipes/runner/reward_scoring.h"
#include "reward/reward_runner.h"
#include "rollout/memory_plan.h"
#include "rollout/rollout_engine.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(1LL << 30));
  return text;
}

// Runs one check: its detail on success, the error's message as the problem otherwise. Any
// exception counts as a problem of the recipe, so that one --check lists every problem.
template <typename F>
void run_check(RecipeCheck& out, const std::string& what, F&& check) {
  CheckItem item{what, true, ""};
  try {
    item.detail = check();
  } catch (const std::exception& e) {
    item.ok = false;
    item.detail = e.what();
  }
  out.items.push_back(std::move(item));
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

std::string data_source(const DatasetSpec& spec, const fs::path& base_dir) {
  return spec.path.empty() ? "synthetic " + spec.synthetic : (base_dir / spec.path).lexically_normal().string();
}

std::string describe_examples(size_t n) { return std::to_string(n) + (n == 1 ? " example" : " examples"); }

}  // namespace

bool RecipeCheck::ok() const {
  return std::all_of(items.begin(), items.end(), [](const CheckItem& i) { return i.ok; });
}

RecipeCheck check_recipe(const Recipe& recipe, const RunOptions& options) {
  RecipeCheck out;
  fs::path run_dir;
  run_check(out, "run directory", [&] {
    run_dir = checked_run_dir(recipe, options);
    if (options.resume) return run_dir.string() + ": holds this recipe's run; --resume continues it";
    return run_dir.string() + (fs::exists(run_dir) ? ": empty, a new run goes there" : ": new, a new run goes there");
  });

  std::optional<torch::Device> device;
  run_check(out, "model.device", [&] {
    device = choose_device(recipe.model.device);
    return recipe.model.device + " -> " + device->str();
  });

  // Data: every file found and parsed, with its example count. The training examples are kept
  // to size the rollout's longest prompt below.
  std::vector<Example> train;
  for (size_t i = 0; i < recipe.train_data.size(); ++i) {
    const auto& spec = recipe.train_data[i];
    run_check(out, "data.train." + std::to_string(i), [&] {
      auto part = load_dataset(spec, recipe.base_dir);
      require(!part.empty(), "holds no examples");
      const size_t n = part.size();
      train.insert(train.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
      return data_source(spec, recipe.base_dir) + ": " + describe_examples(n);
    });
  }
  for (const auto& [name, spec] : recipe.eval_data)
    run_check(out, "data.eval." + name, [&, name = name, spec = spec] {
      const auto examples = load_dataset(spec, recipe.base_dir);
      require(!examples.empty(), "holds no examples");
      return data_source(spec, recipe.base_dir) + ": " + describe_examples(examples.size());
    });

  run_check(out, "rewards", [&] {
    reward::RewardRunner runner(recipe.rewards, 1);  // builds every reward: kinds and options checked
    std::string names;
    for (const auto& spec : recipe.rewards) names += (names.empty() ? "" : ", ") + spec.name + " (" + spec.kind + ")";
    return names;
  });
  if (!recipe.reward_scoring.servers.empty())
    run_check(out, "reward.servers", [&] {
      make_reward_scorer(recipe);  // the health check: reachable, our token, the same rewards
      return std::to_string(recipe.reward_scoring.servers.size()) + " reward server(s) up, serving these rewards";
    });

  std::optional<PromptTemplate> prompt_template;
  run_check(out, "template", [&]() -> std::string {
    const fs::path model_dir = recipe.model.path;
    if (recipe.template_name == "model" && !fs::exists(model_dir / "config.json"))
      return "model: the chat template of the model model.build makes (read once it is built)";
    prompt_template.emplace(PromptTemplate::from_name(recipe.template_name, recipe.template_stop_strings, model_dir,
                                                      recipe.system_prompt));
    return recipe.template_name == "model" ? "model: the chat template of " + model_dir.string() : recipe.template_name;
  });

  // The model: present (config and tokenizer read, weights not loaded) or buildable.
  std::optional<ModelConfig> config;
  std::optional<Tokenizer> tokenizer;
  run_check(out, "model", [&]() -> std::string {
    check_model_source(recipe);
    const fs::path dir = recipe.model.path;
    if (fs::exists(dir / "config.json")) {
      config = ModelConfig::from_file(dir / "config.json");
      tokenizer = Tokenizer::from_dir(dir);
      const auto eos = default_eos_ids(dir, *config, &*tokenizer);
      require(!eos.empty(), dir.string() + ": no EOS token id in config.json, generation_config.json or the tokenizer; "
                                           "the rollout needs one");
      return dir.string() + ": " + std::to_string(config->parameter_count()) + " parameters, vocabulary " +
             std::to_string(config->vocab_size) + " (tokenizer " + std::to_string(tokenizer->vocab_size()) + "), " +
             std::to_string(eos.size()) + " EOS id(s)" + (recipe.model.build.empty() ? "" : "; reused, not rebuilt");
    }
    const auto spec = PretrainSpec::from_file(recipe.model.build.string(), recipe.model.build_overrides);
    config = ModelConfig::from_json(spec.config_json(spec.tokenizer.vocab_size, spec.tokenizer.vocab_size - 1),
                                    spec.source + ": model");
    return dir.string() + ": absent; model.build (" + recipe.model.build.string() + ") builds a " +
           std::to_string(config->parameter_count()) + "-parameter base model there first (" +
           std::to_string(spec.training.total_steps()) + " pretraining steps)";
  });

  // Expert parallelism needs an MoE model whose routed experts divide evenly over the ranks.
  if (recipe.trainer.expert_parallel) {
    run_check(out, "parallel.expert_parallel", [&]() -> std::string {
      require(config.has_value(), "not checked: the model is not known (see above)");
      policy::check_expert_parallel(*config, static_cast<int>(options.check_ranks));
      const int64_t per_rank = config->num_experts / options.check_ranks;
      return options.check_ranks > 1
                 ? std::to_string(per_rank) + " of " + std::to_string(config->num_experts) +
                       " routed experts per rank over " + std::to_string(options.check_ranks) +
                       " ranks, tokens dispatched by all-to-all; the rollout gathers every expert each step"
                 : "one process: every expert is local (expert parallelism needs 2 ranks or more)";
    });
  }

  // The memory plan: weights, the learner's state, and the rollout of one step at full length.
  run_check(out, "memory", [&]() -> std::string {
    require(config.has_value() && device.has_value(), "not planned: the model or the device is not known (see above)");
    const auto dtype = parse_dtype(recipe.model.dtype);
    const double element = double(c10::elementSize(dtype));
    // Weights, gradients, AdamW's moments and the frozen reference (beta > 0) of one rank, as the
    // recipe's parallel.sharding splits them over options.check_ranks ranks (sharding_plan.h).
    const auto sharding = parallel::parse_sharding(policy::sharding_name(recipe.trainer.sharding));
    const auto held = parallel::training_memory(*config, static_cast<int64_t>(element), recipe.trainer.autocast_bf16,
                                                recipe.trainer.loss.beta > 0, sharding, options.check_ranks,
                                                recipe.trainer.prefetch,
                                                recipe.trainer.expert_parallel && config->is_moe(),
                                                recipe.trainer.optimizer.fp32_master);
    const double weights = held.weights + held.rollout_weights;
    const double learner = held.learner();
    const bool experts_split = recipe.trainer.expert_parallel && config->is_moe() && options.check_ranks > 1;
    const std::string sharded =
        options.check_ranks > 1 && sharding != parallel::Sharding::none
            ? " (" + parallel::sharding_name(sharding) + " over " + std::to_string(options.check_ranks) + " ranks" +
                  (sharding == parallel::Sharding::zero3
                       ? std::string(": the weights are the master range") +
                             (experts_split ? " of the replicated parameters, 1/" + std::to_string(options.check_ranks) +
                                                  " of the routed experts whole"
                                            : "") +
                             " plus the rollout's whole copy"
                   : experts_split ? ", expert parallel: 1/" + std::to_string(options.check_ranks) +
                                         " of the routed experts with their whole state, plus the rollout's whole copy"
                                   : "") +
                  (sharding == parallel::Sharding::zero3 ? (recipe.trainer.prefetch ? ", gathers prefetched" : ", gathers not prefetched") : "") +
                  ")"
        : experts_split ? " (expert parallel over " + std::to_string(options.check_ranks) +
                              " ranks: 1/" + std::to_string(options.check_ranks) +
                              " of the routed experts, plus the rollout's whole copy)"
                        : "";
    RolloutShape shape;
    // prompts_per_batch below the step: that many prompts' rows decode at once, refilled as
    // groups finish (continuous batching, recipes/runner/sampling.h), with a longer cache per row.
    shape.prompts = recipe.rollout.prompts_per_step;
    shape.group_size = recipe.rollout.group_size;
    const bool refills = recipe.rollout.prompts_per_batch > 0 && recipe.rollout.prompts_per_batch < shape.prompts;
    if (refills) shape.rows = recipe.rollout.prompts_per_batch * shape.group_size;
    int64_t longest = 1;
    if (tokenizer && prompt_template)
      for (const auto& example : train)
        longest = std::max<int64_t>(longest, encode_prompt(*tokenizer, *prompt_template, example).size());
    else
      longest = 256;  // a model still to be built has no tokenizer yet: a generous estimate
    const EngineOptions engine;
    shape.prompt_tokens = longest;
    shape.max_new_tokens = recipe.rollout.max_new_tokens;
    shape.cache_capacity = rollout_cache_capacity(longest, recipe.rollout.max_new_tokens, refills, engine.span_bucket);
    const int64_t at_once = refills ? recipe.rollout.prompts_per_batch : shape.prompts;
    shape.prefill_rows = std::min(at_once, std::max<int64_t>(1, engine.prefill_tokens / longest));
    shape.element_size = static_cast<int64_t>(element);
    shape.top_p = recipe.rollout.top_p < 1.0;
    shape.fused_projections = engine.fuse_projections;
    MemoryPlan plan = plan_rollout_memory(*config, shape);
    const auto available = allocatable_bytes(*device);
    std::string windows;
    if (refills && available && weights + learner + double(plan.needed_bytes()) > double(*available)) {
      // The engine then decodes consecutive windows of the same rows, each with the shorter
      // cache (rollout/rollout_engine.h): plan what it will run.
      windows = "; continuous batching would need " + gib(double(plan.needed_bytes())) +
                " for the rollout, so it runs as windows of " + std::to_string(at_once) + " prompts";
      shape.prompts = at_once;
      shape.rows = 0;
      shape.cache_capacity = rollout_cache_capacity(longest, recipe.rollout.max_new_tokens, false, engine.span_bucket);
      plan = plan_rollout_memory(*config, shape);
    }
    double needed = weights + learner + double(plan.needed_bytes());
    std::string text = gib(needed) + " = weights " + gib(weights) + " + learner state " + gib(learner) + sharded +
                       " + rollout " + gib(double(plan.needed_bytes())) + " (" + plan.describe() +
                       "; longest prompt " + std::to_string(longest) + " tokens" + (tokenizer ? "" : ", estimated") +
                       "); learner activations not counted" + windows;
    if (sharding == parallel::Sharding::zero3 && options.check_ranks > 1) {
      // ZeRO-3 loads sharded (fully_sharded.h): the start-up peak is the master range (and, expert
      // parallel, the rank's experts), the rollout's copy and the read buffer, not the whole
      // float32 model as before; a model still
      // to be built is one file of its weights or a 5 GiB shard (save_model's) at most.
      const fs::path dir = recipe.model.path;
      const double buffer =
          fs::exists(dir / "config.json")
              ? double(load_staging_bytes(dir, *device))
              : (device->is_cuda() ? std::min(double(config->parameter_count()) * element, double(5ll << 30))
                                   : double(ModelCheckpoint::kReadChunkBytes));
      const double startup = held.zero3_startup(buffer);
      needed = std::max(needed, startup);
      text += "; at start " + gib(startup) + " (loaded sharded: master range, rollout copy and a read buffer of " +
              gib(buffer) + ", never the whole float32 model's " + gib(4.0 * double(config->parameter_count())) + ")";
      // A checkpoint streams the model (and the reference) block by block to rank 0's writer
      // (fully_sharded.h's stream_checkpoint): one block in float32 and the writer's buffer
      // beside the resident state.
      const double write_buffer = double(SafetensorsWriter::kWriteChunkBytes);
      const double checkpoint = held.zero3_checkpoint(write_buffer);
      needed = std::max(needed, checkpoint);
      text += "; at a checkpoint " + gib(checkpoint) + " (saved block by block: " + gib(held.checkpoint_block) +
              " gathered at once in float32 and a write buffer of " + gib(write_buffer) +
              " beside the resident state, never the whole float32 model)";
    }
    if (!available) return text + "; the free memory of " + device->str() + " is not known";
    require(needed <= double(*available),
            text + ", but " + device->str() + " has " + gib(double(*available)) +
                " free: lower rollout.prompts_per_batch (prompts decoding at once), rollout.group_size or rollout.max_new_tokens, or use a "
                "smaller model.dtype");
    return text + "; " + gib(double(*available)) + " free on " + device->str();
  });

  const auto& ro = recipe.rollout;
  const auto& tr = recipe.trainer;
  out.plan.push_back("recipe " + recipe.name + " (" + recipe.file.string() + "), run directory " +
                     (run_dir.empty() ? std::string("(unusable)") : run_dir.string()));
  out.plan.push_back(std::to_string(recipe.schedule.steps) + " GRPO steps, seed " +
                     std::to_string(recipe.schedule.seed) + ": each samples " + std::to_string(ro.prompts_per_step) +
                     " prompts x " + std::to_string(ro.group_size) + " completions of at most " +
                     std::to_string(ro.max_new_tokens) + " tokens (temperature " + number(ro.temperature) +
                     ", top_p " + number(ro.top_p) + (ro.dynamic_sampling ? ", dynamic sampling" : "") + ")");
  out.plan.push_back("learner: lr " + number(tr.optimizer.lr) + ", beta " + number(tr.loss.beta) + ", " +
                     (tr.mini_batch_size > 0 ? "mini-batches of " + std::to_string(tr.mini_batch_size) + " rows"
                                             : std::string("one mini-batch per step")) +
                     ", " + std::to_string(tr.inner_epochs) + " inner epoch(s), model.dtype " + recipe.model.dtype +
                     (tr.expert_parallel ? ", expert parallel" : ""));
  std::string eval_names;
  for (const auto& [name, spec] : recipe.eval_data) eval_names += (eval_names.empty() ? "" : ", ") + name;
  out.plan.push_back(recipe.eval_data.empty()
                         ? std::string("no held-out evaluation")
                         : "held-out evaluation on " + eval_names + " before the first step, " +
                               (recipe.eval.every > 0 ? "every " + std::to_string(recipe.eval.every) + " steps, "
                                                      : std::string()) +
                               "and after the last (" + std::to_string(recipe.eval.samples) + " sample(s), at most " +
                               std::to_string(recipe.eval.max_new_tokens) + " tokens)");
  out.plan.push_back(recipe.checkpoint.every > 0
                         ? "checkpoints every " + std::to_string(recipe.checkpoint.every) + " steps, keeping the last " +
                               std::to_string(recipe.checkpoint.keep_last)
                         : std::string("a checkpoint at the end"));
  return out;
}

}  // namespace aha::recipes
