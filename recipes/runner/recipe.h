// A recipe: one JSON file that says everything a GRPO training run needs -- the base model
// (or how to build one), data, prompt template, rewards with weights, algorithm, rollout,
// schedule, checkpointing and evaluation. `aha train RECIPE` runs it (recipes/grpo_stage.h).
//
//   {
//     "name": "r1-zero-tiny",
//     "model":     {"path": "runs/models/tiny-base", "build": "base/tiny-base.json",
//                   "dtype": "float32", "device": "auto"},
//     "template":  "r1_zero",
//     "data":      {"train": [<dataset spec>, ...], "eval": {"<name>": <dataset spec>, ...}},
//     "rewards":   [{"name": "accuracy", "kind": "math_accuracy", "weight": 1,
//                    "options": {"require_answer_tag": true}}, ...],
//     "accuracy_reward": "accuracy",
//     "reward":    {"servers": ["10.0.0.5:7000"], "server_timeout_seconds": 300, ...},
//     "rollout":   {"prompts_per_step": 16, "group_size": 8, "temperature": 1.0, ...},
//     "algorithm": {"lr": 1e-6, "beta": 0.001, "clip_eps_low": 0.2, ...},
//     "schedule":  {"steps": 100, "seed": 1},
//     "checkpoint": {"every": 50, "keep_last": 2},
//     "eval":      {"every": 25, "samples": 1, "temperature": 0, "max_new_tokens": 256},
//     "logging":   {"keep_samples_last_steps": 10, "keep_samples_every": 10}
//   }
//
// Every section and key is listed with its meaning and default in recipes/README.md.
//
// Contract:
// - Unknown keys (at any level) and ill-typed values are errors (aha::Error) that name the
//   recipe file and the key path ("model.dtyp") and list the valid keys of that object.
// - Overrides (`--set key.path=value`) are applied to the JSON before it is read, so they are
//   checked exactly like the file: a key path names an object member (created when absent) or
//   an array element by index ("data.train.0.n=500"). The value is read as JSON when it parses
//   as JSON (numbers, true/false, null, quoted strings, objects) and as a plain string
//   otherwise ("model.path=/models/Qwen2.5-1.5B").
// - Paths: dataset files and model.build are relative to the recipe file's folder (so a recipe
//   and its data travel together); model.path and the run directory are relative to the
//   working directory (they are outputs or the user's own downloads).
// - The recipe's canonical JSON (after overrides, with every default filled in) is what the run
//   stores as its config and what --resume compares: a resumed run must have the same recipe.
//   The "reward" section (where rewards are scored, not what they are) is left out of it: a
//   resumed run may use other reward servers, and a server token is never stored in the run.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "datasets/dataset_spec.h"
#include "policy/learner/advantages.h"
#include "policy/learner/grpo_trainer.h"
#include "reward/reward_registry.h"

namespace aha::recipes {

struct ModelSection {
  std::string path;                   // the base model directory (HF format)
  std::filesystem::path build;        // a pretraining spec that builds `path` when it is missing
  std::vector<std::string> build_overrides;  // "key.path=value" changes to that spec (build_set)
  std::string dtype = "float32";      // float32 or bfloat16 (float32 + autocast for bf16 speed)
  std::string device = "auto";        // auto (CUDA when present), cpu, cuda, cuda:N
  int64_t threads = 0;                // CPU intra-op threads; 0: LibTorch's default
};

struct RolloutSection {
  int64_t prompts_per_step = 16;
  // Prompts per rollout-engine request (their G completions each share one KV cache); 0: the
  // whole step at once. Lower it when the step's KV cache does not fit the device.
  int64_t prompts_per_batch = 0;
  int64_t group_size = 8;  // G
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  int64_t max_new_tokens = 256;
  bool dynamic_sampling = false;    // DAPO: drop groups whose rewards are all equal, sample more
  int64_t max_sampling_rounds = 3;  // with dynamic_sampling: rollouts per step at most
  bool use_cuda_graphs = true;
  // true: the model's generation_config.json temperature / top_p / top_k (those it gives)
  // replace the three above once the model is loaded (datasets/model_generation_config.h).
  bool use_model_generation_config = false;
};

// Asynchronous GRPO (algorithm.max_staleness, algorithm.tis_cap): rollouts may come from policy
// versions up to max_staleness learner updates older than the learner's; 0 is on-policy GRPO.
// With max_staleness > 0 the loss is the decoupled one with truncated importance weights
// (policy/learner/off_policy_correction.h); tis_cap is ignored with max_staleness 0.
struct AsyncSection {
  int64_t max_staleness = 0;
  double tis_cap = 2.0;
};

// Where the roles run ("layout"): colocated (one process samples and trains, the default) or
// split (rollout_workers processes sample on their own devices, rollout_controller.h, and this
// process trains). Like "parallel", not part of what a run computes: left out of the
// canonical JSON, so a run may resume under another layout.
struct LayoutSection {
  bool split = false;               // "mode": "colocated" or "split"
  int64_t rollout_workers = 1;
  int64_t weight_sync_bucket_mb = 64;
  std::string worker_device = "auto";  // auto: the learner's kind (CPU, or the next GPUs); cpu
  std::string backend = "auto";        // weight sync: auto, gloo, nccl
};

struct ScheduleSection {
  int64_t steps = 100;
  uint64_t seed = 1;
};

struct CheckpointSection {
  int64_t every = 0;      // 0: only at the end
  int64_t keep_last = 2;  // older step directories are removed; 0 keeps all
};

struct EvalSection {
  int64_t every = 0;  // 0: only before the first and after the last step
  int64_t samples = 1;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  int64_t max_new_tokens = 256;
  int64_t prompts_per_batch = 256;
  std::string group_by = "auto";  // metadata field for per-difficulty figures (evaluation.h)
};

struct LoggingSection {
  int64_t keep_samples_last_steps = 10;  // run-store sample retention (core/run_store.h)
  int64_t keep_samples_every = 10;
};

// Where the rewards are scored: this process's threads, reward servers (`aha serve rewards`,
// reward/remote/), or both.
struct RewardScoringSection {
  std::vector<std::string> servers;  // "host:port"; empty: local threads only
  std::string server_token;          // "": $AHA_REWARD_SERVER_TOKEN, if set
  double server_timeout_seconds = 300;
  int64_t max_inflight_per_server = 2;
  int64_t chunk_size = 0;  // items per request; 0: automatic
  bool local = false;      // with servers: this process scores chunks too
  int64_t threads = 0;     // local scoring threads; 0: one per CPU
};

struct Recipe {
  std::string name;
  std::filesystem::path file;  // where it was read from (for relative paths and messages)
  std::filesystem::path base_dir;
  ModelSection model;
  std::string template_name = "r1_zero";
  std::vector<std::string> template_stop_strings;  // only for a custom template pattern
  std::string system_prompt;  // the system message of the chatml, deepseek_r1 and model templates
  std::vector<DatasetSpec> train_data;
  // train_rewards[i]: the rewards that score train_data[i]'s examples (a data set's "rewards",
  // reward_selection.h); empty: every reward.
  std::vector<std::vector<std::string>> train_rewards;
  std::map<std::string, DatasetSpec> eval_data;
  std::vector<reward::RewardSpec> rewards;
  std::string accuracy_reward;  // the reward component reported as accuracy
  RewardScoringSection reward_scoring;  // "reward"
  RolloutSection rollout;
  policy::AdvantageOptions advantage;
  policy::TrainerOptions trainer;
  AsyncSection async;  // from "algorithm"
  LayoutSection layout;
  ScheduleSection schedule;
  CheckpointSection checkpoint;
  EvalSection eval;
  LoggingSection logging;

  std::string canonical_json;  // the whole recipe with defaults, as stored in the run
};

// A "model" section alone (JSON text of the object; build is relative to base_dir).
ModelSection parse_model_section(const std::string& json_text, const std::filesystem::path& base_dir,
                                 const std::string& context);

// Reads a recipe file and applies "key.path=value" overrides. Throws aha::Error (see above).
Recipe load_recipe(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});
// The same from JSON text; `file` is used for messages and relative paths.
Recipe parse_recipe(const std::string& json_text, const std::filesystem::path& file,
                    const std::vector<std::string>& overrides = {});

}  // namespace aha::recipes
