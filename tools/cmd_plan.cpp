// `aha plan`: per-GPU memory of GRPO training under each sharding mode of the learner state
// (policy/parallel/sharding_plan.h), and whether it fits, for a model config and optionally a
// recipe's rollout and learner sizes. Nothing is loaded or allocated: the plan is on paper.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "policy/model/model_config.h"
#include "policy/model/model_sizes.h"
#include "policy/model/safetensors.h"
#include "policy/parallel/sharding_plan.h"
#include "recipes/runner/recipe.h"
#include "tools/cli.h"

namespace aha::cli {
namespace {

namespace fs = std::filesystem;
using parallel::PlanInputs;
using parallel::Precision;
using parallel::Sharding;

// An H200 as nvidia-smi reports it (143,771 MiB): the plan's default target, the same on every
// machine, so that a plan made on a laptop is the plan for the GPUs it is meant for.
constexpr double kH200GiB = 143771.0 / 1024.0;

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", bytes / double(int64_t{1} << 30));
  return text;
}

std::string count(int64_t n) {
  char text[48];
  if (n >= 1'000'000'000)
    std::snprintf(text, sizeof text, "%lld (%.2f B)", static_cast<long long>(n), double(n) / 1e9);
  else
    std::snprintf(text, sizeof text, "%lld (%.2f M)", static_cast<long long>(n), double(n) / 1e6);
  return text;
}

// CONFIG: a config.json, or a model directory holding one.
ModelConfig read_config(const fs::path& path) {
  if (fs::is_directory(path)) return ModelConfig::from_file(path / "config.json");
  return ModelConfig::from_file(path);
}

// The recipe's model config: model.path's config.json (the model must exist already).
ModelConfig recipe_model_config(const recipes::Recipe& recipe) {
  const fs::path config = fs::path(recipe.model.path) / "config.json";
  if (!fs::exists(config))
    throw Error("recipe " + recipe.file.string() + ": its model " + recipe.model.path +
                " has no config.json (yet: model.build makes it on the first run); give --model CONFIG");
  return ModelConfig::from_file(config);
}

Precision recipe_precision(const recipes::Recipe& recipe) {
  if (recipe.model.dtype == "bfloat16")
    return recipe.trainer.optimizer.fp32_master ? Precision::bf16_master : Precision::bf16;
  return recipe.trainer.autocast_bf16 ? Precision::autocast : Precision::fp32;
}

// The recipe's sizes on one of `gpus` data-parallel ranks (each samples and trains on its share
// of the step's prompts, as `aha train` does): rollout rows are one engine request's (its
// prompts x group size), learner tokens a micro-batch's rows x (prompt + completion).
void apply_recipe(const recipes::Recipe& recipe, int64_t prompt_tokens, PlanInputs& in) {
  const auto& r = recipe.rollout;
  if (r.prompts_per_step % in.gpus != 0)
    throw Error("recipe " + recipe.file.string() + ": rollout.prompts_per_step " + std::to_string(r.prompts_per_step) +
                " does not divide by --gpus " + std::to_string(in.gpus) +
                " (each GPU samples an equal share of the step's prompts)");
  const int64_t prompts = r.prompts_per_step / in.gpus;
  const int64_t request = r.prompts_per_batch > 0 ? std::min(r.prompts_per_batch, prompts) : prompts;
  in.rollout_rows = request * r.group_size;
  in.rollout_tokens = prompt_tokens + r.max_new_tokens;
  const auto& t = recipe.trainer;
  int64_t rows = prompts * r.group_size;  // this GPU's share of the step
  if (t.mini_batch_size > 0) rows = std::min(rows, std::max<int64_t>(1, t.mini_batch_size / in.gpus));
  if (t.micro_batch_size > 0) rows = std::min(rows, t.micro_batch_size);
  in.micro_batch_tokens = rows * in.rollout_tokens;
  // Packed micro-batches hold at most their budget, or one row as long as the longest sequence.
  if (t.micro_batch_tokens > 0) in.micro_batch_tokens = std::max(t.micro_batch_tokens, in.rollout_tokens);
  in.activation_checkpointing = t.activation_checkpointing;
  in.precision = recipe_precision(recipe);
}

std::string kv_formula(const ModelConfig& c, int64_t element) {
  std::ostringstream out;
  if (c.uses_mla())
    out << "MLA latent cache: (kv_lora_rank " << c.mla.kv_lora_rank << " + qk_rope_head_dim " << c.mla.qk_rope_head_dim
        << ")";
  else
    out << "2 x kv_heads " << c.num_key_value_heads << " x head_dim " << c.head_dim;
  out << " x " << c.num_hidden_layers << " layers x " << element << " B";
  return out.str();
}

int plan(const Args& args) {
  const auto recipe_file = args.get("recipe");
  std::optional<recipes::Recipe> recipe;
  if (recipe_file) recipe = recipes::load_recipe(*recipe_file);
  if (!args.get("model") && !recipe) throw UsageError("aha plan: --model CONFIG is required (or --recipe RECIPE)");

  PlanInputs in;
  in.gpus = args.get_int("gpus", 0, 1, int64_t{1} << 20);
  if (!args.get("gpus")) throw UsageError("aha plan: --gpus N is required");
  const double gpu_gib = args.get_double("gpu-memory", kH200GiB);
  if (!(gpu_gib > 0 && gpu_gib < 1e9)) throw UsageError("aha plan: --gpu-memory must be a number of GiB > 0");
  const int64_t prompt_tokens = args.get_int("prompt-tokens", 256, 0, int64_t{1} << 30);
  if (recipe) apply_recipe(*recipe, prompt_tokens, in);
  // Explicit options win over the recipe's figures.
  in.micro_batch_tokens = args.get_int("micro-batch-tokens", in.micro_batch_tokens, 1, int64_t{1} << 40);
  in.rollout_rows = args.get_int("rollout-rows", in.rollout_rows, 0, int64_t{1} << 30);
  in.rollout_tokens = args.get_int("rollout-tokens", in.rollout_tokens, 0, int64_t{1} << 30);
  try {
    if (auto p = args.get("precision")) in.precision = parallel::parse_precision(*p);
  } catch (const Error& e) {
    throw UsageError(std::string("--precision: ") + e.what());
  }
  if (auto ac = args.get("activation-checkpointing")) {
    if (*ac != "on" && *ac != "off")
      throw UsageError("--activation-checkpointing must be on or off, got '" + *ac + "'");
    in.activation_checkpointing = *ac == "on";
  }
  if (auto ep = args.get("expert-parallel")) {
    if (*ep != "on" && *ep != "off") throw UsageError("--expert-parallel must be on or off, got '" + *ep + "'");
    in.expert_parallel = *ep == "on";
  } else if (recipe) {
    in.expert_parallel = recipe->trainer.expert_parallel;
  }
  std::vector<Sharding> modes;
  // A recipe that asks for a sharding mode (parallel.sharding) is planned under it; --sharding wins.
  const bool recipe_shards = recipe && recipe->trainer.sharding != policy::Sharding::none;
  const std::string sharding =
      args.get("sharding", recipe_shards ? policy::sharding_name(recipe->trainer.sharding) : std::string("all"));
  try {
    modes = sharding == "all" ? parallel::all_shardings() : std::vector<Sharding>{parallel::parse_sharding(sharding)};
  } catch (const Error& e) {
    throw UsageError(std::string("--sharding: ") + e.what() + " or all");
  }

  const std::string model_name = args.get("model") ? args.required("model") : recipe->model.path;
  const ModelConfig c = args.get("model") ? read_config(args.required("model")) : recipe_model_config(*recipe);
  if (in.expert_parallel && !c.is_moe()) throw Error("expert parallelism needs a mixture-of-experts model");
  if (in.expert_parallel && c.num_experts % in.gpus != 0)
    throw Error("expert parallelism: the model's " + std::to_string(c.num_experts) +
                " routed experts cannot be split evenly over " + std::to_string(in.gpus) + " GPUs");
  const auto f = parallel::model_footprint(c, in);
  const auto bytes = parallel::precision_bytes(in.precision);
  const double gpu_bytes = gpu_gib * double(int64_t{1} << 30);

  std::printf("model        %s (%s) on %lld GPU%s of %s\n", model_name.c_str(), c.architecture.c_str(),
              static_cast<long long>(in.gpus), in.gpus == 1 ? "" : "s", gib(gpu_bytes).c_str());
  if (recipe) std::printf("recipe       %s: sizes per GPU from its rollout and algorithm sections\n", recipe_file->c_str());
  std::printf("parameters   %s", count(f.parameters).c_str());
  if (c.is_moe() && in.expert_parallel && in.gpus > 1)
    std::printf(", %s active per token; expert parallel: each GPU holds %lld of %lld routed experts per layer "
                "(%s routed-expert parameters / %lld), and gathers the others for the rollout",
                count(f.active_parameters).c_str(), static_cast<long long>(c.num_experts / in.gpus),
                static_cast<long long>(c.num_experts), count(parallel::routed_expert_parameters(c)).c_str(),
                static_cast<long long>(in.gpus));
  else if (c.is_moe())
    std::printf(", %s active per token (weights, gradients and optimizer state count every expert)",
                count(f.active_parameters).c_str());
  std::printf("\nprecision    %s: per parameter weights %lld B, gradients %lld B, optimizer %lld B%s\n",
              parallel::precision_name(in.precision).c_str(), static_cast<long long>(bytes.weight),
              static_cast<long long>(bytes.gradient), static_cast<long long>(bytes.optimizer),
              in.precision == Precision::bf16_master ? " (fp32 master + 2 fp32 AdamW moments)"
              : in.precision == Precision::bf16      ? " (2 bf16 AdamW moments)"
                                                     : " (2 fp32 AdamW moments)");
  std::printf("learner      micro-batch of %lld tokens, activation checkpointing %s: tokens x %lld B x %s = %s\n",
              static_cast<long long>(in.micro_batch_tokens), in.activation_checkpointing ? "on" : "off",
              static_cast<long long>(bytes.activation),
              in.activation_checkpointing ? "(layers x hidden + the widest layer's activations)"
                                          : "(every layer's activations)",
              gib(f.activation_bytes).c_str());
  std::printf("rollout      %lld rows x %lld tokens x %lld B per token (%s): %s\n",
              static_cast<long long>(in.rollout_rows), static_cast<long long>(in.rollout_tokens),
              static_cast<long long>(f.kv_bytes_per_token), kv_formula(c, bytes.kv_cache).c_str(),
              gib(double(in.rollout_rows) * double(in.rollout_tokens) * double(f.kv_bytes_per_token)).c_str());
  std::printf("\nGiB per GPU  %10s %10s %10s %10s %11s %10s %10s  fits\n", "weights", "gradients", "optimizer",
              "gathered", "activations", "KV cache", "total");
  std::optional<Sharding> first_fit;
  for (auto mode : modes) {
    const auto p = parallel::plan_sharding(c, in, mode);
    const double g = double(int64_t{1} << 30);
    const bool fits = p.total() <= gpu_bytes;
    if (fits && !first_fit) first_fit = mode;
    std::printf("%-12s %10.2f %10.2f %10.2f %10.2f %11.2f %10.2f %10.2f  %s\n", parallel::sharding_name(mode).c_str(),
                p.weights / g, p.gradients / g, p.optimizer / g, p.gathered / g, p.activations / g, p.kv_cache / g,
                p.total() / g, fits ? "yes" : "no");
  }
  std::printf("\n");
  if (first_fit)
    std::printf("fits: with %s%s\n", parallel::sharding_name(*first_fit).c_str(),
                modes.size() > 1 ? " (the least sharding that fits)" : "");
  else
    std::printf("does not fit in %s per GPU%s: more GPUs, a sharding mode further down, shorter rollouts or fewer "
                "rows, a smaller micro-batch or activation checkpointing\n",
                gib(gpu_bytes).c_str(), modes.size() > 1 ? " under any sharding mode" : "");
  std::printf("(total = weights + gradients + optimizer + gathered + the larger of activations and KV cache: the "
              "rollout and the learner take turns; CUDA context and allocator overhead not counted)\n");
  if (std::find(modes.begin(), modes.end(), Sharding::zero3) != modes.end() && in.gpus > 1)
    std::printf("(zero3 as aha trains today also keeps the rollout's whole copy of the weights in the compute dtype, "
                "%s per GPU more at %lld B per parameter; aha train --check counts it)\n",
                gib(double(f.parameters) * double(in.precision == Precision::fp32 ? 4 : 2)).c_str(),
                static_cast<long long>(in.precision == Precision::fp32 ? 4 : 2));
  if (std::find(modes.begin(), modes.end(), Sharding::zero3) != modes.end() && in.gpus > 1) {
    // aha's zero3 loads sharded (policy/learner/fully_sharded.h): its start-up peak, staging one
    // safetensors file at a time for the rollout's copy (bf16 files in shards of at most 5 GiB,
    // as the hub ships them; a smaller model's one file).
    const double buffer = std::min(double(f.parameters) * 2.0, double(int64_t{5} << 30));
    const bool experts_split = in.expert_parallel && c.is_moe();
    const auto held = parallel::training_memory(c, 4, in.precision != Precision::fp32, false, Sharding::zero3, in.gpus,
                                                false, experts_split);
    std::printf("(zero3 as aha starts: each GPU reads only its float32 master range%s, %s, from the files, then the "
                "rollout's copy, staging one file of %s: %s at start; the whole float32 model, %s, is never loaded)\n",
                experts_split ? " and its routed experts" : "", gib(held.weights).c_str(), gib(buffer).c_str(),
                gib(held.zero3_startup(buffer)).c_str(), gib(4.0 * double(f.parameters)).c_str());
    // Its checkpoint peak: the model streamed block by block to rank 0's writer.
    const double write_buffer = double(SafetensorsWriter::kWriteChunkBytes);
    std::printf("(zero3 as aha checkpoints: the model is written block by block, %s gathered at once in float32%s and "
                "a write buffer of %s beside the resident state and the rollout's copy: %s at a checkpoint)\n",
                gib(held.checkpoint_block).c_str(), experts_split ? " (with one expert's matrix)" : "",
                gib(write_buffer).c_str(), gib(held.zero3_checkpoint(write_buffer)).c_str());
  }
  return 0;
}

CommandRegistration plan_cmd(
    {"plan",
     "--model CONFIG --gpus N [--sharding MODE] [--recipe R]: per-GPU memory of training under each sharding mode",
     {.usage = "--model CONFIG --gpus N [options]",
      .description =
          "Prints, per GPU, the memory of GRPO training a model of the shape in CONFIG (a config.json or a\n"
          "model directory) on N data-parallel GPUs: weights, gradients and AdamW state (all experts of a\n"
          "mixture of experts), the ZeRO-3 gather buffer, the learner micro-batch's activations and the\n"
          "rollout's KV cache (MLA's latent cache for DeepSeek-V3), under each sharding mode (none,\n"
          "zero1: optimizer state sharded, zero2: and gradients, zero3: and weights), and whether it fits\n"
          "in --gpu-memory. With --recipe the rollout and learner sizes, precision and activation\n"
          "checkpointing are the recipe's (its model too, when it exists and --model is not given).\n"
          "Nothing is loaded: the plan is on paper (policy/parallel/sharding_plan.h states its formulas).",
      .options = {{"model", "CONFIG", "required",
                   "config.json (e.g. recipes/models/deepseek-v3.json) or a model directory; with --recipe, "
                   "default: the recipe's model"},
                  {"gpus", "N", "required", "data-parallel GPUs the learner state is sharded over"},
                  {"gpu-memory", "GiB", "140.40", "memory of one GPU (an H200: 143,771 MiB)"},
                  {"sharding", "MODE", "all", "none, zero1, zero2, zero3 or all (with --recipe: its parallel.sharding when it sets one)"},
                  {"precision", "P", "bf16-master",
                   "fp32, autocast (fp32 weights, bf16 compute), bf16, or bf16-master (bf16 weights, fp32 master "
                   "and moments); with --recipe: the recipe's"},
                  {"recipe", "RECIPE", "none", "take the sizes from this GRPO recipe"},
                  {"micro-batch-tokens", "T", "4096", "learner tokens per forward/backward on one GPU; with --recipe: its micro-batch rows x (prompt + max_new_tokens)"},
                  {"activation-checkpointing", "on|off", "on", "keep only each layer's input for backward; with --recipe: the recipe's"},
                  {"rollout-rows", "R", "64", "sequences one GPU decodes at once; with --recipe: one request's prompts x group_size"},
                  {"rollout-tokens", "L", "4096", "KV cache slots per sequence (prompt + completion); with --recipe: --prompt-tokens + max_new_tokens"},
                  {"prompt-tokens", "P", "256", "with --recipe: the prompt length added to max_new_tokens"},
                  {"expert-parallel", "on|off", "off", "routed experts split over the GPUs (MoE models); with --recipe: its parallel.expert_parallel"}},
      .examples = {"aha plan --model recipes/models/deepseek-v3.json --gpus 64",
                   "aha plan --model recipes/models/qwen2.5-1.5b.json --gpus 2 --sharding zero2 --gpu-memory 80",
                   "aha plan --recipe recipes/r1-zero-gpu.json --model recipes/models/qwen2.5-0.5b.json --gpus 4"}},
     plan});

}  // namespace
}  // namespace aha::cli
